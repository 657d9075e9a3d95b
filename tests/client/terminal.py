"""A real terminal session for CLI tests: the command runs as a subprocess on a pseudo-terminal that is its
controlling terminal (so `isatty()` is true and a hidden prompt reads from it), while the test reads what it
draws and types into it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import sys
import termios
from pathlib import Path

GROKGATE = str(Path(sys.executable).parent / "grokgate")


def client_env(**values: str) -> dict[str, str]:
    """The environment of a CLI run: this one without any GROKGATE_ setting, plus `values`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GROKGATE_")}
    return {**env, "TERM": "xterm-256color", "COLUMNS": "120", **values}


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.args = [GROKGATE, *args]
        self.env = env
        self.output = b""
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._master = -1
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Terminal:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self._master = master
        self._process = await asyncio.create_subprocess_exec(
            *self.args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=self.env,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        asyncio.get_running_loop().add_reader(master, self._read)
        return self

    def _read(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every writer of the terminal is gone
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._master)
            self._closed.set()
        self.output += data
        self._changed.set()

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    async def expect(self, text: str, timeout: float = 30.0) -> None:
        """Wait until `text` has been drawn."""
        async with asyncio.timeout(timeout):
            while text not in self.text:
                if self._closed.is_set():
                    raise AssertionError(f"{text!r} never came; the terminal showed {self.text!r}")
                self._changed.clear()
                await self._changed.wait()

    async def expect_hidden_input(self, timeout: float = 30.0) -> None:
        """Wait until the command has turned echo off for a secret (input typed earlier would be flushed)."""
        async with asyncio.timeout(timeout):
            while termios.tcgetattr(self._master)[3] & termios.ECHO:
                await asyncio.sleep(0.02)

    def type(self, text: str) -> None:
        os.write(self._master, text.encode())

    async def finish(self, timeout: float = 60.0) -> int:
        """Wait for the command to end and for everything it drew; its exit status."""
        assert self._process is not None
        async with asyncio.timeout(timeout):
            code = await self._process.wait()
            await self._closed.wait()
        return code

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        if not self._closed.is_set():
            asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)
