"""What a full garbage collection costs in a serving worker, with and without ``gc.freeze()``.

Builds a worker's data plane the way ``mainspring serve`` does (project, registry, the benchmark's
LightGBM model loaded and warmed), then times ``gc.collect()`` (process CPU time, so that a
shared machine does not inflate it) before and after freezing the heap. A full collection walks
every tracked object; in a worker that is the loaded libraries' ~180k objects, and while it runs
every request in flight in that worker waits.

Run: python benchmarks/serving/gc_pauses.py
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import train

import mainspring as ms
from mainspring.cli.serve import PlaneFactory
from mainspring.serving.oip import rest  # noqa: F401  (what a worker imports to serve)


def full_collection_ms(times: int = 5) -> float:
    spent = []
    for _ in range(times):
        start = time.process_time()
        gc.collect()
        spent.append((time.process_time() - start) * 1000)
    return statistics.median(spent)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mainspring-gc-"))
    train(work / "model.txt")
    with ms.Project.open(work / "project") as project:
        project.registry.register("bench", work / "model.txt", actor="bench")
    plane = PlaneFactory(work / "project")()
    plane.start()
    tracked = len(gc.get_objects())
    before = full_collection_ms()
    gc.freeze()
    after = full_collection_ms()
    print(f"tracked objects after loading: {tracked}")
    print(f"full collection: {before:.1f} ms CPU before gc.freeze(), {after:.2f} ms after")


if __name__ == "__main__":
    main()
