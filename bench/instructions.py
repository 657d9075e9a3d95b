"""Instructions per image request: the gateway run under valgrind's callgrind, counted over sequential requests.

On a shared 2-core host the time-based figures of one commit move by a quarter from one run to the next (and by a
factor of two from one day to the next), which hides any change smaller than that. An instruction count does not
move: the same code on the same inputs gives the same count within about 1 %, whatever else the machine does. It
counts user-space work only (not the kernel's sockets and files) and weighs every instruction alike, so it ranks
changes to our own code; the time-based scenarios still say what a box holds.

The gateway runs `serve --no-background` (no poller, webhooks or sweeper: their ticks would count with wall time,
which valgrind stretches fifty-fold), is warmed up with `WARM_UP` requests, its counters are zeroed, `requests`
images are asked one after another, and the counters dumped (`callgrind_control`); the sandbox runs normally.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.procs import BIN, free_port
from bench.servers import IMAGE_BODY, Servers, _tenant

WARM_UP = 20
"""Requests before counting: the first ones import, compile and fill caches."""


def available() -> str | None:
    """Why the count cannot be made here, or None."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    return f"{', '.join(missing)} not installed (apt-get install valgrind)" if missing else None


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway under valgrind exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=10).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"the gateway under valgrind did not start in {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def _summary(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {dump}")


def count(servers: Servers, backend: str, requests: int) -> dict[str, Any]:
    """Instructions the gateway process (all its threads) executes per image request, on `backend`."""
    sandbox = servers.sandbox()
    try:
        with servers.database(backend) as db_url:
            key = asyncio.run(_tenant(db_url))
            port = free_port()
            work = servers.workdir / f"callgrind-{port}"
            work.mkdir()
            env = servers.env(
                GROKGATE_DATABASE_URL=db_url,
                GROKGATE_PORT=str(port),
                XAI_API_KEY="bench-key",
                XAI_BASE_URL=f"{sandbox.url}/v1",
                GROKGATE_DATA_DIR=str(work / "data"),
            )
            out = work / "callgrind.out"
            log = work / "gateway.log"
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
            command += [str(BIN / "python"), str(BIN / "grokgate"), "serve", "--no-background"]
            with log.open("wb") as sink:
                proc = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=work)
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_healthy(url, proc, log)
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                with httpx.Client(timeout=300) as client:

                    def images(n: int) -> None:
                        for _ in range(n):
                            response = client.post(
                                url + "/api/v1/models/grok-imagine", content=IMAGE_BODY, headers=headers
                            )
                            if response.status_code != 200:
                                raise RuntimeError(f"an image answered {response.status_code}: {response.text[:500]}")

                    images(WARM_UP)
                    subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
                    images(requests)
                    subprocess.run(["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True)
            finally:
                proc.terminate()
                proc.wait(timeout=120)
            [dump] = work.glob("callgrind.out.*")  # the zeroed-then-dumped part; the one at exit has no suffix
            return {
                "requests": requests,
                "instructions_per_image": round(_summary(dump) / requests),
                "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(),
            }
    finally:
        sandbox.stop()
