"""The gateway as a real operating-system process: started with `grokgate serve`, killed with SIGKILL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support import free_port

GROKGATE = str(Path(sys.executable).with_name("grokgate"))


def clean_env(**overrides: Any) -> dict[str, str]:
    """The parent's environment without anything that would point the child at another upstream or database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GROKGATE_", "XAI_")) or key.startswith("GROKGATE_TEST")
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def gateway_env(db_url: str, sandbox_url: str, **overrides: Any) -> dict[str, str]:
    """Settings for a gateway process that talks to the test sandbox as if it were xAI."""
    from tests.conftest import SANDBOX_KEY

    unpaced = {"GROKGATE_XAI_IMAGE_RPS": "0", "GROKGATE_XAI_VIDEO_RPS": "0"}  # the test sandbox has no limits
    return clean_env(
        GROKGATE_DATABASE_URL=db_url,
        XAI_API_KEY=SANDBOX_KEY,
        XAI_BASE_URL=f"{sandbox_url}/v1",
        GROKGATE_LOG_LEVEL="warning",
        **{**unpaced, **overrides},
    )


def run_cli(
    *args: str, env: dict[str, str], cwd: Path | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """`grokgate ARGS` with exactly `env` as its environment. In this process by default (typer's runner: the
    command's code, its output and exit status, without paying an interpreter start and the imports each time);
    `process=True` (or a `cwd`) runs the installed script as its own process, for what only a process shows."""
    if process or cwd is not None:
        return subprocess.run([GROKGATE, *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from a coroutine: the command's own asyncio.run needs a thread without a loop
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(run_cli, *args, env=env).result()
    from typer.testing import CliRunner

    from grokgate.cli import app
    from grokgate.cli.common import CliError

    changes: dict[str, str | None] = {key: None for key in os.environ if key not in env}
    changes.update({key: value for key, value in env.items() if os.environ.get(key) != value})
    result = CliRunner().invoke(app, list(args), env=changes)
    code, stderr = result.exit_code, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        if not isinstance(result.exception, CliError):
            raise result.exception  # a bug, not an answer: show its traceback
        code, stderr = 1, f"{stderr}grokgate: {result.exception}\n"  # as `grokgate.cli.main` prints it
    return subprocess.CompletedProcess([GROKGATE, *args], code, result.stdout, stderr)


class GatewayProcess:
    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "GROKGATE_PORT": str(self.port)}
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> GatewayProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([GROKGATE, "serve"], env=self.env, stdout=log, stderr=log, cwd=self.cwd)
        # A deadline, not a count of tries: on a loaded machine one health check alone can take a second.
        deadline = asyncio.get_running_loop().time() + 60
        async with httpx.AsyncClient() as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"gateway exited early:\n{self.log_path.read_text()}")
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"gateway did not come up:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
