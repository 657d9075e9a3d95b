"""`serve --workers N`: uvicorn's process manager, with a listening socket of its own for each worker.

uvicorn binds one socket and hands it to every worker. Each worker's event loop then accepts greedily: whichever
wakes first takes every connection waiting, so clients that keep their connections (as SDKs and load generators
do) stay with the worker that happened to be awake. A burst of 1,000 keep-alive clients on `--workers 2` split
about 2:1 (13 s against 6 s of CPU), leaving the busy worker the bottleneck while the other idled. Here each
worker listens on a socket of its own, all bound to one port with `SO_REUSEPORT`, so the kernel spreads new
connections over the workers by a hash of their addresses, as nginx's `reuseport` does. The parent keeps every
socket open: a worker that dies is replaced on the same socket, and connections that arrived meanwhile wait in its
queue instead of being refused.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from grokgate.cli.common import CliError

logger = logging.getLogger("uvicorn.error")


def reuseport_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """`count` listening sockets on one address, each with `SO_REUSEPORT`.

    `SO_REUSEPORT` would also let this server join another one already listening there with the same option (a
    second `serve` started by mistake), the two then splitting the traffic without a word. A first bind without it
    refuses an address that anything listens on, as a plain server's bind would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # connections in TIME_WAIT do not count
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            for made in sockets:
                made.close()
            raise
        sock.listen(backlog)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


class SocketPerWorker(Multiprocess):
    """uvicorn's `Multiprocess`, where worker i (and whoever replaces it) serves `sockets[i]` alone."""

    def _spawn(self, index: int) -> Process:
        process = Process(self.config, [self.sockets[index]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._spawn(index) for index in range(self.processes_num)]

    def restart_all(self) -> None:
        """Each worker replaced by a new one on its socket, the new one ready before the old one stops."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._spawn(index)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error(f"New worker [{new.pid}] was not ready in time; keeping [{old.pid}], restart stopped.")
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # the app or its settings are broken: a new one would fail too
                logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info(f"Child process [{process.pid}] died")
            self.processes[index] = self._spawn(index)


def run_workers(app: str, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, factory=True, workers=workers, **options)` with a socket per worker."""
    config = Config(app, factory=True, workers=workers, **options)
    sockets = reuseport_sockets(config.host, config.port, workers, config.backlog)
    try:
        SocketPerWorker(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
