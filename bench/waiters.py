"""The load generator of the benchmark's held-clients scenario: many clients waiting on videos at once, some with
`Prefer: wait`, most on `/events`, over plain asyncio sockets (thousands of connections from one small process).

Every video is made to end at one moment (`--end-at`, through the sandbox's `[sandbox:delay=S]` marker, counted
from when it is sent): first the videos that the streams follow are made and `--per-video` streams opened on each,
then the `Prefer: wait` requests are sent at the pace the first phase reached, each making its own video. Progress
goes to `--status` (a JSON file the benchmark reads while it samples the gateway); at the end one JSON object in
`--report` lists every answer (job id, when it arrived, the status it carried).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TERMINAL = ("completed", "failed", "cancelled")
LONGEST_WAIT = 60.0
"""`Prefer: wait=60` is the most a client may ask for; a request is sent no earlier than this before `--end-at`."""


@dataclass
class Run:
    host: str
    port: int
    key: str
    end_at: float
    held: int = 0
    peak: int = 0
    all_held_at: float | None = None
    launched: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def hold(self, total: int) -> None:
        self.held += 1
        self.peak = max(self.peak, self.held)
        if self.held == total and self.all_held_at is None:
            self.all_held_at = time.time()

    def answer(self, job_id: str, kind: str, status: str) -> None:
        self.answers.append({"job": job_id, "kind": kind, "at": time.time(), "status": status})


async def send(
    run: Run, method: str, path: str, body: dict[str, Any] | None = None, prefer: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
    reader, writer = await asyncio.open_connection(run.host, run.port)
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {run.host}:{run.port}\r\nAuthorization: Bearer {run.key}\r\n"
    head += "Connection: close\r\n"
    if prefer:
        head += f"Prefer: {prefer}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    writer.write(head.encode() + b"\r\n" + data)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return reader, writer, status, headers


async def json_answer(run: Run, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    reader, writer, status, headers = await send(run, method, path, **kwargs)
    try:
        length = headers.get("content-length")
        raw = await (reader.readexactly(int(length)) if length is not None else reader.read())
        return status, json.loads(raw)
    finally:
        writer.close()


def video_body(run: Run, label: str) -> dict[str, Any]:
    delay = max(1.0, run.end_at - time.time())
    return {"prompt": f"held {label} [sandbox:delay={delay:.2f}]", "duration": 1}


async def stream(run: Run, job_id: str, total: int) -> None:
    try:
        reader, writer, status, _ = await send(run, "GET", f"/api/v1/jobs/{job_id}/events")
    except OSError as exc:
        run.errors.append(f"events connect: {exc!r}")
        return
    try:
        if status != 200:
            run.errors.append(f"events {status}")
            return
        run.hold(total)
        try:
            while line := await reader.readline():
                if line.startswith(b"data: "):
                    found = json.loads(line[6:])["status"]
                    if found in TERMINAL:
                        run.answer(job_id, "events", found)
                        return
            run.errors.append("events closed before the job ended")
        finally:
            run.held -= 1
    finally:
        writer.close()


async def wait(run: Run, index: int, total: int) -> None:
    run.hold(total)
    try:
        status, body = await json_answer(
            run, "POST", "/api/v1/models/grok-imagine", body=video_body(run, f"wait {index}"), prefer="wait=60"
        )
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        run.errors.append(f"wait: {exc!r}")
        return
    finally:
        run.held -= 1
    if status not in (200, 202) or "jobId" not in body:
        run.errors.append(f"wait {status}: {str(body)[:200]}")
        return
    run.answer(body["jobId"], "wait", body["status"])


def write_status(path: Path, run: Run) -> None:
    path.write_text(json.dumps({"held": run.held, "answered": len(run.answers), "errors": len(run.errors)}))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--waits", type=int, required=True, help="clients sending Prefer: wait=60")
    parser.add_argument("--streams", type=int, required=True, help="clients on /events")
    parser.add_argument("--per-video", type=int, default=9, help="streams following one video")
    parser.add_argument("--end-at", type=float, required=True, help="UNIX time at which every video is done")
    parser.add_argument("--concurrency", type=int, default=64, help="videos made at once")
    parser.add_argument("--status", required=True, help="file rewritten with progress")
    parser.add_argument("--report", required=True, help="file the answers are written to at the end")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    where = urlsplit(args.url)
    run = Run(where.hostname or "127.0.0.1", where.port or 80, args.key, args.end_at)
    total = args.waits + args.streams
    status_file = Path(args.status)
    started = time.time()
    tasks: list[asyncio.Task[None]] = []

    async def report() -> None:
        while True:
            write_status(status_file, run)
            await asyncio.sleep(0.2)

    reporter = asyncio.create_task(report())
    groups = iter(range(-(-args.streams // args.per_video)))

    async def make_followed() -> None:
        for group in groups:
            try:
                status, body = await json_answer(
                    run, "POST", "/api/v1/models/grok-imagine", body=video_body(run, f"followed {group}")
                )
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                run.errors.append(f"video: {exc!r}")
                continue
            if status != 202:
                run.errors.append(f"video {status}: {str(body)[:200]}")
                continue
            many = min(args.per_video, args.streams - group * args.per_video)
            tasks.extend(asyncio.create_task(stream(run, body["jobId"], total)) for _ in range(many))

    await asyncio.gather(*(make_followed() for _ in range(args.concurrency)))
    followed_at = time.time()
    # The waits go out at the pace the videos were made, or faster if that would not send them all within the
    # 60 s a `Prefer: wait` can hold before every video ends (they queue in the gateway then, held all the same).
    window = LONGEST_WAIT - 20
    pace = max(1.0, (-(-args.streams // args.per_video)) / max(followed_at - started, 0.001), args.waits / window)
    await asyncio.sleep(max(0.0, args.end_at - LONGEST_WAIT + 10 - time.time()))
    for index in range(args.waits):
        tasks.append(asyncio.create_task(wait(run, index, total)))
        await asyncio.sleep(1 / pace)
    waits_sent_at = time.time()
    await asyncio.gather(*tasks)
    reporter.cancel()
    write_status(status_file, run)
    # A file, not stdout: 10,000 answers are more than a pipe holds, and the benchmark reads only once we exit.
    report = {
        "started": started,
        "followed_made_at": followed_at,
        "waits_sent_at": waits_sent_at,
        "all_held_at": run.all_held_at,
        "held_peak": run.peak,
        "answers": run.answers,
        "errors": run.errors[:20],
        "error_count": len(run.errors),
    }
    await asyncio.to_thread(Path(args.report).write_text, json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
