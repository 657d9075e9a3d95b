"""The benchmark runs end to end at a tiny size and writes a results file with the summary keys runs are compared
by. It measures nothing here: numbers come from `scripts/bench`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import BACKEND

ROOT = Path(__file__).resolve().parent.parent


def _bench_tiny(out: Path, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`python -m bench.run --tiny *args` writing into `out`: the finished process and the results file it wrote."""
    command = [sys.executable, "-m", "bench.run", "--tiny", *args, "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = out.glob("*.json")
    return result, json.loads(path.read_text())


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.skipif(shutil.which("hey") is None, reason="the load generator hey is not installed")
@pytest.mark.skipif(BACKEND != "sqlite", reason="runs once per suite, in the SQLite pass")
def test_bench_runs_tiny_and_writes_json(tmp_path: Path) -> None:
    result, results = _bench_tiny(tmp_path, "--backends", "sqlite", timeout=280)
    assert list(results)[-1] == "summary"
    summary = results["summary"]
    for key in (
        "image_rps_vs_floor_c16_sqlite",
        "gateway_cpu_ms_per_image_sqlite",
        "gateway_cpu_ms_per_poll_sqlite",
        "gateway_cpu_ms_per_download_sqlite",
        "gateway_cpu_ms_per_balance_sqlite",
        "slow_upstream_bound_fraction_sqlite",
        "slow_upstream_gateway_mean_s_sqlite",
        "poll_cpu_ms_per_job_100",
        "poll_cpu_ms_per_job_10000",
        "notification_lag_p50_s",
        "held_answer_delay_p50_ms_sqlite",
        "steady_polls_per_video_sqlite",
        "steady_polls_per_video_every_interval_sqlite",
        "calibration_ms",
    ):
        assert isinstance(summary[key], int | float), key
    assert summary["scaled_down"] is True
    assert summary["slow_upstream_gateway_mean_s_sqlite"] >= 2.0  # it holds the upstream's own 2 s
    assert summary["ledger_balance_equals_sum"] is True
    assert results["machine"]["load_generator"].startswith("hey")
    assert "image path" in result.stdout
    assert "read: poll c16" in result.stdout


@pytest.mark.e2e
@pytest.mark.timeout(420)
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif(BACKEND != "postgresql", reason="runs once per suite, in the PostgreSQL pass")
def test_bench_counts_the_instructions_of_an_image_request(tmp_path: Path) -> None:
    _, results = _bench_tiny(tmp_path, "--only", "instructions", "--backends", "postgresql", timeout=400)
    measured = results["backends"]["postgresql"]["instructions"]
    assert measured["requests"] == 3
    # A whole image request (HTTP in and out, the charge, the call to xAI, storing, the ending) is millions of
    # instructions: a count of the idle loop, or of the warm-up's imports, would be far off either side.
    assert 1_000_000 < measured["instructions_per_image"] < 50_000_000
    assert measured["valgrind"].startswith("valgrind-")
