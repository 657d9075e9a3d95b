"""The garbage collector set for a long-running server process (`grokgate serve`, each of its `--workers`, and
`grokgate worker`); called once the process has imported what it runs on and built its app.

A gateway holding a thousand slow calls keeps a large heap alive: every import (FastAPI, SQLAlchemy, Pydantic,
aiohttp), plus each request in flight. CPython's defaults collect the youngest generation every 700 allocations of
container objects, and now and then the whole heap, which it walks object by object. Under 1,000 clients on a 2 s
upstream that cost about a sixth of the gateway's CPU (measured with `scripts/bench`'s slow-upstream scenario:
3.7 -> 3.1 ms per image). Two changes, both in CPython's documented API:

- `gc.freeze()` after start-up moves everything alive then (modules, classes, the app) out of every future
  collection: it lives as long as the process, and walking it found nothing to free;
- collections run less often: the youngest generation after 50,000 allocations, the whole heap after 20 x 100
  young ones. A request's objects are freed by reference counting when it ends; the collector only finds cycles,
  and what it finds a little later costs a few megabytes at most.

Not used in tests that build apps in-process: objects frozen there would live until the test run ends.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
