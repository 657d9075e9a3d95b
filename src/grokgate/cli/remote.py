"""What the client commands (`generate`, `jobs`, `balance`, `login`) share: a `Client` from the environment or
the saved login, one-line errors, local files as data URIs, and a progress display that appears only on a
terminal."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from time import monotonic
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from grokgate.cli.common import CliError
from grokgate.client import Client, GrokgateError, Job
from grokgate.client.files import data_uri


def stderr() -> Console:
    """Where progress and notes go, so stdout carries only the result."""
    return Console(stderr=True, highlight=False)


@contextlib.contextmanager
def connected() -> Iterator[Client]:
    """A client for the configured gateway; any SDK error leaves as one line naming its status and code."""
    try:
        with Client() as client:
            yield client
    except GrokgateError as exc:
        raise CliError(str(exc)) from None


def source(value: str, option: str) -> str:
    """An http(s) URL or data URI as given; an existing local file read into a data URI."""
    if value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise CliError(f"{option}: {value} is neither an http(s) URL nor a readable file")
    try:
        return data_uri(path)
    except (OSError, ValueError) as exc:
        raise CliError(f"{option}: {exc}") from None


def wire(model: BaseModel) -> dict[str, Any]:
    """An SDK object as the API spells it (camelCase), for `--json`."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def print_json(payload: Any) -> None:
    print(json.dumps(payload))


class Display:
    """A job's state, xAI's progress percentage (when known) and the elapsed time, redrawn in place on a terminal;
    nothing at all otherwise (pipes, files, `--json`)."""

    def __init__(self, label: str, *, quiet: bool) -> None:
        console = stderr()
        self.live = not quiet and console.is_terminal
        self.label = label
        self.started = monotonic()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[percent]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> Display:
        if self.live:
            self.progress.start()
            self.task = self.progress.add_task(f"{self.label}: starting", total=None, percent="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def update(self, job: Job) -> None:
        """Show the job's latest state (an `on_progress` callback)."""
        if self.task is None:
            return
        percent = 100 if job.status == "completed" else job.progress
        self.progress.update(
            self.task,
            description=f"{self.label} {job.id}: {job.status}",
            total=100 if percent is not None else None,
            completed=percent or 0,
            percent=f"{percent}%" if percent is not None else "",
        )

    def note(self, text: str) -> None:
        """Show a state that is no job yet (`submitting`)."""
        if self.task is not None:
            self.progress.update(self.task, description=f"{self.label}: {text}")
