"""The processes the benchmark starts and the load it sends: free ports, servers waited for, `hey`, metrics."""

from __future__ import annotations

import contextlib
import csv
import io
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    peak_rss: int = 0

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        """This process's CPU and its live children's (`serve --workers N` answers from its children)."""
        total = 0.0
        for proc in [self.ps, *self.ps.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def sample_rss(self) -> int:
        rss = int(self.ps.memory_info().rss)
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(
    name: str,
    args: list[str],
    env: dict[str, str],
    port: int,
    workdir: Path,
    ready: str = "/healthz",
    *,
    wait: float = 20.0,
) -> Process:
    """Start `args` and wait up to `wait` seconds for `ready` to answer (a server under valgrind needs minutes)."""
    log = workdir / f"{name}.log"
    proc = subprocess.Popen(args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + ready, timeout=1).status_code < 500:
                return Process(name, proc, url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")


@dataclass
class Load:
    requests: int
    concurrency: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[str, int] = field(default_factory=dict)


def hey(
    url: str,
    *,
    n: int,
    c: int,
    method: str = "GET",
    body: str | None = None,
    key: str | None = None,
    during: Any = None,
    rate: float | None = None,
) -> Load:
    """Run `hey`; `during()` is called every 100 ms while it runs (to sample the server). `rate`: requests per
    second in all, spread over the clients (none: as fast as the server answers)."""
    c = min(c, n)  # hey needs at least one request per client
    args = ["hey", "-n", str(n), "-c", str(c), "-m", method, "-t", "120", "-o", "csv"]
    if rate is not None:
        args += ["-q", f"{rate / c:g}"]
    if key:
        args += ["-H", f"Authorization: Bearer {key}"]
    if body is not None:
        args += ["-T", "application/json", "-d", body]
    started = time.perf_counter()
    # Files, not pipes: a full run's CSV (a line per request) is more than a pipe holds, and while `during`
    # samples nobody reads the pipe, so hey would wait on it forever.
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        with subprocess.Popen([*args, url], stdout=stdout, stderr=stderr, text=True) as proc:
            if during is not None:
                while proc.poll() is None:
                    during()
                    time.sleep(0.1)
            proc.wait()
        stdout.seek(0)
        stderr.seek(0)
        out = stdout.read()
        if proc.returncode:
            raise RuntimeError(f"hey failed: {stderr.read()}")
    seconds = time.perf_counter() - started
    rows = list(csv.DictReader(io.StringIO(out)))
    n = len(rows) if rows else n  # hey sends n // c per client: count what was really sent
    latencies = sorted(float(row["response-time"]) * 1000 for row in rows)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status-code"]] = statuses.get(row["status-code"], 0) + 1
    ok = sum(count for status, count in statuses.items() if status.startswith("2"))

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else float("nan")

    return Load(n, c, round(seconds, 3), round(ok / seconds, 1), pct(0.5), pct(0.99), n - ok, statuses)


METRICS_TOKEN = secrets.token_hex(8)
"""The gateways' GROKGATE_METRICS_TOKEN: /metrics on the API port answers only with it."""


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if ("{" in name and line.startswith(name)) or line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
    return total
