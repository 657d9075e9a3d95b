"""`grokgate jobs list|show|wait|cancel`: your jobs on a grokgate server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grokgate.cli.common import CliError, JsonFlag, app
from grokgate.cli.remote import Display, connected, print_json, wire
from grokgate.client import Job, JobFailed

jobs = typer.Typer(no_args_is_help=True, help="List, show, wait on and cancel your jobs.")
app.add_typer(jobs, name="jobs")

JobId = Annotated[str, typer.Argument(help="The job's id (job_...).")]


def _line(job: Job) -> str:
    when = job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else "-"
    extra = f"  {job.error.code}" if job.error else ""
    return f"{job.id}  {job.status:<10}  {job.credits_charged:>6} credits  {when}{extra}"


@jobs.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(help="Jobs per page (1-100).")] = 20,
    offset: Annotated[int, typer.Option(help="Jobs to skip.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Your jobs, newest first."""
    with connected() as client:
        page = client.jobs.list(limit=limit, offset=offset, status=status)
    if as_json:
        print_json(wire(page))
        return
    for job in page.jobs:
        typer.echo(_line(job))
    typer.echo(f"{len(page.jobs)} of {page.total}")


@jobs.command("show")
def show(job_id: JobId, as_json: JsonFlag = False) -> None:
    """One job, with its result links or its error."""
    with connected() as client:
        job = client.jobs.get(job_id)
    if as_json:
        print_json(wire(job))
        return
    typer.echo(_line(job))
    for url in job.result_urls:
        typer.echo(f"  {url}")


@jobs.command("wait")
def wait(
    job_id: JobId,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Save the video here once done.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Follow a job to its end (progress on a terminal); with -o, save its video."""
    with connected() as client:
        try:
            with Display("job", quiet=as_json) as display:
                job = client.jobs.wait(job_id, timeout=timeout, on_progress=display.update)
        except KeyboardInterrupt:
            raise CliError(f"stopped waiting; {job_id} goes on") from None
        if job.status != "completed":
            raise CliError(str(JobFailed(job)))
        path = client.jobs.download(job_id, output) if output is not None else None
    if as_json:
        print_json({**wire(job), **({"file": str(path)} if path else {})})
        return
    typer.echo(str(path) if path else _line(job))


@jobs.command("cancel")
def cancel(job_id: JobId, as_json: JsonFlag = False) -> None:
    """Cancel a pending or processing job; its credits are refunded."""
    with connected() as client:
        job = client.jobs.cancel(job_id)
    if as_json:
        print_json(wire(job))
        return
    typer.echo(f"{job.id}  {job.status}  {job.credits_refunded or 0} credits refunded")
