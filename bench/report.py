"""What a run prints and keeps: the machine, the table, and the summary's per-database figures."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import psutil


def _fixed_work() -> int:
    total = 0
    for i in range(200_000):
        total += len(str(i)) + (i * 7) % 13
    table = {str(i): i for i in range(50_000)}
    return total + sum(table.values())


def calibration_ms() -> float:
    """CPU milliseconds of a fixed piece of pure-Python work, the best of five: how fast this machine runs the
    interpreter at the time of the run. Shared hosts have moved it by a factor of two from one day to the next, and
    every figure with it, so figures are compared only between runs whose calibrations agree (or back to back)."""
    _fixed_work()  # a first pass warms the caches (and on some hosts the clock) up
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        _fixed_work()
        best = min(best, time.process_time() - start)
    return round(best * 1000, 1)


def machine() -> dict[str, Any]:
    import grokgate

    versions = {}
    for package in ("fastapi", "uvicorn", "sqlalchemy", "httpx", "pydantic", "asyncpg", "aiosqlite"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:
            versions[package] = None
    hey_version = "hey (Debian package)"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "grokgate": grokgate.__version__,
        "packages": versions,
        "load_generator": hey_version,
        "sqlite": __import__("sqlite3").sqlite_version,
        "calibration_ms": calibration_ms(),
    }


def table(results: dict[str, Any]) -> str:
    lines = [f"{'scenario':<44} {'rps':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}  extra"]
    for backend, scenarios in results["backends"].items():
        for label, load in [("floor " + k, v) for k, v in results["floor"].items()] if backend == "sqlite" else []:
            lines.append(f"{label:<44} {load['rps']:>9} {load['p50_ms']:>9} {load['p99_ms']:>9} {load['errors']:>7}")
        if backend == "sqlite":
            up = results["upstream_alone"]
            lines.append(
                f"{'upstream alone c16':<44} {up['rps']:>9} {up['p50_ms']:>9} {up['p99_ms']:>9} {up['errors']:>7}"
            )
        for c, load in scenarios["image_path"].items():
            lines.append(
                f"{backend + ' image path ' + c:<44} {load['rps']:>9} {load['p50_ms']:>9} {load['p99_ms']:>9} "
                f"{load['errors']:>7}  cpu {load['gateway_cpu_ms_per_request']} ms/req"
            )
        for name, load in scenarios.get("reads", {}).items():
            lines.append(
                f"{backend + ' read: ' + name + ' c16':<44} {load['rps']:>9} {load['p50_ms']:>9} {load['p99_ms']:>9} "
                f"{load['errors']:>7}  cpu {load['gateway_cpu_ms_per_request']} ms/req"
            )
        slow = scenarios["slow_upstream"]
        lines.append(
            f"{backend + ' slow upstream c' + str(slow['concurrency']):<44} {slow['rps']:>9} {slow['p50_ms']:>9} "
            f"{slow['p99_ms']:>9} {slow['errors']:>7}  {slow['bound_fraction']:.0%} of bound, "
            f"cpu {slow.get('gateway_cpu_ms_per_request')} ms/req, mean in gateway {slow.get('gateway_mean_s')} s "
            f"of {slow.get('client_mean_s')} s, "
            f"db conns in use: max sampled {slow['db_connections_in_use_sampled_max']:.0f}, "
            f"mean {slow['db_connections_in_use_sampled_mean']}"
        )
        led = scenarios["ledger"]
        lines.append(
            f"{backend + ' ledger contention':<44} {led['attempts_per_second']:>9} {'':>9} {'':>9} {'':>7}  "
            f"balance==sum {led['balance_equals_ledger_sum']}"
        )
        for key, video in scenarios["videos"].items():
            lines.append(
                f"{backend + ' videos ' + key:<44} {'':>9} {'':>9} {'':>9} {'':>7}  "
                f"all done {video['seconds_until_all_completed']} s, {video['cpu_ms_per_poll']} cpu ms/poll, "
                f"{video['db_statements_per_poll']} stmts/poll, lag p50 {video['notification_lag_p50_s']} s, "
                f"rss {video['peak_rss_mib']} MiB"
            )
        if "steady_videos" in scenarios:
            steady = scenarios["steady_videos"]
            lines.append(
                f"{backend + ' steady videos ' + str(steady['videos']):<44} {'':>9} {'':>9} {'':>9} {'':>7}  "
                f"{steady['polls_per_video']} polls/video (every interval: "
                f"{steady['polls_per_video_every_interval']}), "
                f"lag p50 {steady['notification_lag_p50_s']} s, {steady['cpu_ms_per_video']} cpu ms/video"
            )
        if "held_clients" in scenarios:
            held = scenarios["held_clients"]
            lines.append(
                f"{backend + ' held clients ' + str(held['clients']):<44} {'':>9} "
                f"{held['answer_delay_p50_ms']!s:>9} {held['answer_delay_p99_ms']!s:>9} {held['errors']:>7}  "
                f"peak held {held['held_peak']}, {held['db_statements_per_s_held']} stmts/s held "
                f"({held['polls_per_s_held']} polls/s), end-to-answer ms p50/p99 as shown"
            )
    return "\n".join(lines)


def held_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The held-clients figures of each database, for the summary."""
    summary: dict[str, Any] = {}
    for backend, scenarios in results["backends"].items():
        held = scenarios.get("held_clients")
        if held is None:
            continue
        summary[f"held_clients_{backend}"] = held["clients"]
        summary[f"held_clients_peak_{backend}"] = held["held_peak"]
        summary[f"held_db_statements_per_s_{backend}"] = held["db_statements_per_s_held"]
        summary[f"held_answer_delay_p50_ms_{backend}"] = held["answer_delay_p50_ms"]
        summary[f"held_answer_delay_p99_ms_{backend}"] = held["answer_delay_p99_ms"]
    return summary


def video_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The video figures of each database, for the summary: videos accepted per second (the larger run's
    submissions), the notification lag at that size, RSS, and how the poll's cost grows from the smaller run to the
    larger (a ratio near 1 is a cost per job that stays flat)."""
    summary: dict[str, Any] = {}
    for backend, scenarios in results["backends"].items():
        runs = scenarios.get("videos")
        if not runs:
            continue
        ordered = sorted(runs.values(), key=lambda run: run["videos"])
        small, large = ordered[0], ordered[-1]
        summary[f"videos_in_flight_{backend}"] = large["videos"]
        summary[f"videos_accepted_per_s_{backend}"] = large["submit"]["rps"]
        summary[f"video_lag_p50_s_{backend}"] = large["notification_lag_p50_s"]
        summary[f"video_lag_p99_s_{backend}"] = large["notification_lag_p99_s"]
        summary[f"video_poll_interval_s_{backend}"] = large["poll_interval_s"]
        summary[f"video_peak_rss_mib_{backend}"] = large["peak_rss_mib"]
        summary[f"video_db_statements_per_poll_{backend}"] = large["db_statements_per_poll"]
        if small is not large and small["cpu_ms_per_poll"]:
            summary[f"video_poll_cpu_growth_{backend}"] = round(large["cpu_ms_per_poll"] / small["cpu_ms_per_poll"], 2)
    for backend, scenarios in results["backends"].items():
        steady = scenarios.get("steady_videos")
        if steady:
            summary[f"steady_polls_per_video_{backend}"] = steady["polls_per_video"]
            summary[f"steady_polls_per_video_every_interval_{backend}"] = steady["polls_per_video_every_interval"]
            summary[f"steady_video_lag_p50_s_{backend}"] = steady["notification_lag_p50_s"]
    return summary


def image_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The image path's figures of each database that ran it, for the summary: the CPU per image at c16, per read
    of a customer's (a poll, a download, the balance) and the fraction of the Little's-law bound held on the slow
    upstream."""
    summary: dict[str, Any] = {}
    for backend, scenarios in results["backends"].items():
        if "image_path" in scenarios:
            summary[f"gateway_cpu_ms_per_image_{backend}"] = scenarios["image_path"]["c16"][
                "gateway_cpu_ms_per_request"
            ]
            summary[f"image_rps_c16_{backend}"] = scenarios["image_path"]["c16"]["rps"]
        for name, load in scenarios.get("reads", {}).items():
            summary[f"gateway_cpu_ms_per_{name}_{backend}"] = load["gateway_cpu_ms_per_request"]
        if "slow_upstream" in scenarios:
            summary[f"slow_upstream_bound_fraction_{backend}"] = scenarios["slow_upstream"]["bound_fraction"]
            summary[f"slow_upstream_errors_{backend}"] = scenarios["slow_upstream"]["errors"]
            summary[f"slow_upstream_gateway_mean_s_{backend}"] = scenarios["slow_upstream"].get("gateway_mean_s")
        if "instructions" in scenarios:
            summary[f"instructions_per_image_{backend}"] = scenarios["instructions"]["instructions_per_image"]
    return summary
