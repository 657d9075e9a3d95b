"""`grokgate`: run the server, the sandbox and migrations, administer organisations, keys and credits, and, as
a customer, generate media and follow jobs on a server (`generate`, `jobs`, `balance`, `login`).

Every command takes `--json` and then prints exactly one JSON object on stdout. Errors are one line on stderr and
a non-zero exit status, never a traceback. Each command family lives in its own module; importing them here
registers them on the one command tree.
"""

from __future__ import annotations

import sys

import typer

from grokgate.cli import account as _account  # noqa: F401  (registers balance, ledger, login)
from grokgate.cli import admin as _admin  # noqa: F401  (registers `grokgate admin ...`)
from grokgate.cli import generate as _generate  # noqa: F401  (registers `grokgate generate image|video`)
from grokgate.cli import jobs as _jobs  # noqa: F401  (registers `grokgate jobs list|show|wait|cancel`)
from grokgate.cli import serve as _serve  # noqa: F401  (registers serve, worker, sandbox, migrate, demo)
from grokgate.cli import upstream as _upstream  # noqa: F401  (registers `grokgate admin upstream-key ...`)
from grokgate.cli.common import CliError, app


def main() -> None:
    try:
        app()
    except CliError as exc:
        typer.echo(f"grokgate: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        typer.echo(f"grokgate: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
