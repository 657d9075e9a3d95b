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

import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from bench.servers import IMAGE_BODY, Servers

WARM_UP = 20
"""Requests before counting: the first ones import, compile and fill caches."""


def available() -> str | None:
    """Why the count cannot be made here, or None."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    return f"{', '.join(missing)} not installed (apt-get install valgrind)" if missing else None


def _summary(dump: Path) -> int:
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {dump}")


def count(servers: Servers, backend: str, requests: int) -> dict[str, Any]:
    """Instructions the gateway process (all its threads) executes per image request, on `backend`."""
    out = servers.workdir / f"callgrind-{secrets.token_hex(3)}.out"
    callgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    sandbox = servers.sandbox()
    try:
        with servers.database(backend) as db_url:
            gateway, key = servers.gateway(db_url, sandbox, under=callgrind, serve_args=["--no-background"], wait=300)
            try:
                headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                with httpx.Client(timeout=300) as client:

                    def images(n: int) -> None:
                        for _ in range(n):
                            response = client.post(
                                gateway.url + "/api/v1/models/grok-imagine", content=IMAGE_BODY, headers=headers
                            )
                            if response.status_code != 200:
                                raise RuntimeError(f"an image answered {response.status_code}: {response.text[:500]}")

                    pid = str(gateway.proc.pid)
                    images(WARM_UP)
                    subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)
                    images(requests)
                    subprocess.run(["callgrind_control", "--dump", pid], check=True, capture_output=True)
            finally:
                gateway.stop()
    finally:
        sandbox.stop()
    [dump] = out.parent.glob(out.name + ".*")  # the zeroed-then-dumped part; the one at exit has no suffix
    return {
        "requests": requests,
        "instructions_per_image": round(_summary(dump) / requests),
        "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(),
    }
