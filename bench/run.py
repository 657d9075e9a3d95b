"""grokgate's benchmark: what the gateway costs per request, how many slow upstream calls it holds, how many
videos it tracks, side by side with baselines, on SQLite and PostgreSQL. Run it with `scripts/bench [--quick]`.

Every server is a real process on loopback; the load comes from `hey` (a Go load generator) in its own process.
Results print as a table and are written to `bench/results/<timestamp>.json`, ending with a `summary` object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import instructions
from bench.procs import ROOT
from bench.report import held_summary, image_summary, machine, table, video_summary
from bench.scenarios import Bench
from bench.servers import SCENARIOS, SIZES


def alone(bench: Bench, backends: list[str], scenarios: list[str], out: Path) -> None:
    """Some scenarios on each database, written like a full run with the summary of what they measured."""
    sizes = bench.sizes
    results: dict[str, Any] = {"size": sizes.name, "machine": machine(), "settings": bench.settings()}
    results["only"] = scenarios
    results["backends"] = {}
    for backend in backends:
        results["backends"][backend] = {}
        for scenario in scenarios:
            if scenario == "videos":
                sizes_run = (sizes.videos_small, sizes.videos_large)
                measured: Any = {f"{n}_in_flight": bench.videos(backend, n) for n in sizes_run}
            else:
                measured = getattr(bench, scenario)(backend)
            results["backends"][backend][scenario] = measured
    results["summary"] = {"size": sizes.name, "scaled_down": sizes.name != "full", "only": scenarios}
    results["summary"]["calibration_ms"] = results["machine"]["calibration_ms"]
    results["summary"] |= image_summary(results) | video_summary(results) | held_summary(results)
    scenario = "+".join(scenarios)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{scenario}.json"
    path.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["backends"], indent=2))
    print(json.dumps(results["summary"], indent=2))
    print(f"written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario at a small size (under 3 minutes)")
    parser.add_argument("--tiny", action="store_true", help="smoke-test size (seconds)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument(
        "--only", help=f"run these scenarios alone, comma-separated ({', '.join(SCENARIOS)}): no floor, no full summary"
    )
    parser.add_argument("--workers", type=int, default=1, help="run the gateway as `grokgate serve --workers N`")
    parser.add_argument(
        "--same-image",
        action="store_true",
        help="the sandbox hands out one cached PNG and one MP4, not distinct images and videos",
    )
    args = parser.parse_args()
    only = [name for name in (args.only or "").split(",") if name]
    if unknown := set(only) - set(SCENARIOS):
        parser.error(f"--only: no scenario {', '.join(sorted(unknown))} (there are {', '.join(SCENARIOS)})")
    if "instructions" in only and (missing := instructions.available()):
        sys.exit(f"bench: instructions: {missing}")
    if shutil.which("hey") is None and not set(only) <= {"held_clients", "ledger", "instructions"}:  # no hey there
        sys.exit("bench: the load generator `hey` is missing (apt-get install hey)")
    sizes = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    backends = [b for b in args.backends.split(",") if b]
    with tempfile.TemporaryDirectory(prefix="grokgate-bench-") as folder:
        bench = Bench(sizes, Path(folder), workers=args.workers, same_image=args.same_image)
        if only:
            alone(bench, backends, only, Path(args.out))
            return
        results: dict[str, Any] = {"size": sizes.name, "machine": machine(), "settings": bench.settings()}
        results["floor"] = bench.floor()
        results["upstream_alone"] = bench.upstream_alone()
        results["backends"] = {}
        for backend in backends:
            results["backends"][backend] = {
                "image_path": bench.image_path(backend),
                "reads": bench.reads(backend),
                "slow_upstream": bench.slow_upstream(backend),
                "ledger": bench.ledger(backend),
                "videos": {
                    f"{n}_in_flight": bench.videos(backend, n) for n in (sizes.videos_small, sizes.videos_large)
                },
                "steady_videos": bench.steady_videos(backend),
                "held_clients": bench.held_clients(backend),
            }
    first = results["backends"].get("sqlite") or next(iter(results["backends"].values()))
    small, large = (first["videos"][f"{n}_in_flight"] for n in (sizes.videos_small, sizes.videos_large))
    results["summary"] = {
        "size": sizes.name,
        "scaled_down": sizes.name != "full",
        "calibration_ms": results["machine"]["calibration_ms"],
        "videos_small_is": sizes.videos_small,
        "videos_large_is": sizes.videos_large,
        "image_rps_vs_floor_c16_sqlite": round(first["image_path"]["c16"]["rps"] / results["floor"]["c16"]["rps"], 3),
        "gateway_cpu_ms_per_image_sqlite": first["image_path"]["c16"]["gateway_cpu_ms_per_request"],
        "image_added_p50_ms_c16_sqlite": round(
            first["image_path"]["c16"]["p50_ms"] - results["upstream_alone"]["p50_ms"], 2
        ),
        "image_added_p99_ms_c16_sqlite": round(
            first["image_path"]["c16"]["p99_ms"] - results["upstream_alone"]["p99_ms"], 2
        ),
        "slow_upstream_bound_fraction_sqlite": first["slow_upstream"]["bound_fraction"],
        **image_summary(results),
        "ledger_balance_equals_sum": all(
            b["ledger"]["balance_equals_ledger_sum"] for b in results["backends"].values()
        ),
        "poll_cpu_ms_per_job_100": small["cpu_ms_per_job"],
        "poll_cpu_ms_per_job_10000": large["cpu_ms_per_job"],
        "notification_lag_p50_s": large["notification_lag_p50_s"],
        **video_summary(results),
        **held_summary(results),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(json.dumps(results["summary"], indent=2))
    print(f"written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
