"""`grokgate generate image|video`: make media on a grokgate server and save it, with progress on a terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grokgate.cli.common import CliError, JsonFlag, app
from grokgate.cli.remote import Display, connected, print_json, source, stderr, wire
from grokgate.client import JobFailed
from grokgate.client.operations import ImageOptions, ImageSource, VideoOptions

generate = typer.Typer(no_args_is_help=True, help="Generate images and videos (uses GROKGATE_API_KEY or login).")
app.add_typer(generate, name="generate")

Output = Annotated[
    Path, typer.Option("-o", "--output", help="File to write, or a directory to name it in (after the job).")
]


@generate.command("image")
def image(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    aspect: Annotated[str | None, typer.Option("--aspect", help="16:9 9:16 4:3 3:4 1:1 3:2 2:3.")] = None,
    n: Annotated[int | None, typer.Option("-n", help="Images to make (1-10), each charged.")] = None,
    edit: Annotated[
        list[str] | None, typer.Option("--edit", help="Image to edit (file or URL); up to 3 times.")
    ] = None,
    model: Annotated[str, typer.Option(help="Sub-model (grokgate models: GET /api/v1/models).")] = "text-to-image",
    resolution: Annotated[str | None, typer.Option(help="1k or 2k.")] = None,
    output: Output = Path("."),
    as_json: JsonFlag = False,
) -> None:
    """Generate (or, with --edit, edit) images and save them."""
    options: ImageOptions = {"model": model}
    sources: list[ImageSource] = [source(value, "--edit") for value in edit or []]
    if sources:
        options["image_url"] = sources[0] if len(sources) == 1 else sources
    if aspect:
        options["aspect_ratio"] = aspect
    if n is not None:
        options["n"] = n
    if resolution:
        options["resolution"] = resolution
    with connected() as client, Display("image", quiet=as_json) as display:
        display.note("generating")
        result = client.images.generate(prompt, **options)
        files = result.save(output)
    if as_json:
        print_json(
            {
                "jobId": result.job_id,
                "creditsCharged": result.credits_charged,
                "files": [str(f) for f in files],
                "urls": result.urls,
            }
        )
        return
    for file in files:
        typer.echo(str(file))
    stderr().print(f"saved {len(files)} image(s) from {result.job_id} ({result.credits_charged} credits)")


@generate.command("video")
def video(
    prompt: Annotated[str | None, typer.Argument(help="What happens (optional with --image).")] = None,
    duration: Annotated[int | None, typer.Option(help="Seconds (1-15, default 6).")] = None,
    image: Annotated[str | None, typer.Option("--image", help="First frame (file or URL): image-to-video.")] = None,
    aspect: Annotated[str | None, typer.Option("--aspect", help="16:9 9:16 4:3 3:4 1:1 3:2 2:3.")] = None,
    resolution: Annotated[str | None, typer.Option(help="480p, 720p (1080p where the model has it).")] = None,
    model: Annotated[str | None, typer.Option(help="Sub-model; text-to-video, or image-to-video with --image.")] = None,
    output: Output = Path("."),
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the video and save it.")] = True,
    timeout: Annotated[float | None, typer.Option(help="Give up waiting after this many seconds.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a video, follow it to its end (state, progress, elapsed time) and save it."""
    options: VideoOptions = {}
    if duration is not None:
        options["duration"] = duration
    if image:
        options["image_url"] = source(image, "--image")
    if aspect:
        options["aspect_ratio"] = aspect
    if resolution:
        options["resolution"] = resolution
    if model:
        options["model"] = model
    with connected() as client:
        job = client.videos.create(prompt, **options)
        if not wait:
            if as_json:
                print_json(wire(job.job))
            else:
                typer.echo(f"{job.id}  {job.status}  {job.job.credits_charged} credits")
            return
        try:
            with Display("video", quiet=as_json) as display:
                display.update(job.job)
                final = job.wait(timeout=timeout, on_progress=display.update)
        except KeyboardInterrupt:
            raise CliError(f"stopped waiting; {job.id} goes on: grokgate jobs wait {job.id}") from None
        if final.status != "completed":
            raise CliError(str(JobFailed(final)))
        path = job.download(output)
    if as_json:
        print_json({**wire(final), "file": str(path)})
        return
    typer.echo(str(path))
    stderr().print(f"saved {final.duration or '?'} s video from {final.id} ({final.credits_charged} credits)")
