"""Dask engine throughput: rows/s labelling generated job-duty files with 1 and 2 local workers.

Writes ``--files`` CSV files of ``--rows`` rows in total (every duty text different,
from benchmarks/jobduties.py, seeded), then for each worker count starts a
``distributed.LocalCluster`` on 127.0.0.1 (worker processes of one thread each) and
labels the files with ``label_files`` (what ``bpo-classify label --engine dask`` runs)
``--runs`` times. Cluster start-up is excluded. The first run on a new cluster is
reported on its own ("cold": the model reaches each worker, which loads it and warms
its caches); "warm" is the best of the later runs, the rate of a cluster that is
already up. The local engine (``label_csv`` over the same files, one process, best of
``--runs``) is measured too, and the Dask output is checked to equal it, part for part.

Run: `make bench` or `.venv/bin/python benchmarks/bench_dask.py [--rows N] [--files N] [--runs N]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jobduties  # noqa: E402

from bpo_classify.labeling import label_csv  # noqa: E402
from bpo_classify.model import load_model  # noqa: E402


def run_dask(workers: int, pattern: str, work: Path, runs: int) -> tuple[float, float, int, Path]:
    """Seconds of the first (cold) run and best later (warm) run on a new cluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    from bpo_classify.dask_engine import label_files

    times, rows, out = [], 0, work / "none"
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster, Client(cluster):
        for run in range(runs):
            out = work / f"dask-{workers}-{run}"
            start = time.perf_counter()
            summary, _ = label_files(pattern, str(out))
            times.append(time.perf_counter() - start)
            rows = summary.rows
    return times[0], min(times[1:] or times), rows, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows in total (default: 200,000)")
    parser.add_argument("--files", type=int, default=8, help="number of input files (default: 8)")
    parser.add_argument("--runs", type=int, default=3, help="runs per setting: one cold, then warm ones (default: 3)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    try:
        per_file = args.rows // args.files
        inputs = [
            jobduties.write(work / f"part-{i:03d}.csv", per_file, "distinct", seed=i) for i in range(args.files)
        ]
        total = per_file * args.files
        print(f"{total:,} rows in {args.files} files, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}")

        model = load_model()
        best = float("inf")
        for run in range(args.runs):
            start = time.perf_counter()
            for i, path in enumerate(inputs):
                label_csv(path, work / f"local-{i:03d}.csv", model=model)
            best = min(best, time.perf_counter() - start)
        print(f"local engine (1 process)   {total / best:>9,.0f} rows/s  ({best:.2f} s)")

        for workers in (1, 2):
            cold, warm, rows, out = run_dask(workers, str(work / "part-*.csv"), work, args.runs)
            assert rows == total, (rows, total)
            parts = sorted(out.glob("part-*.csv"))
            same = [p.read_bytes() for p in parts] == [(work / f"local-{i:03d}.csv").read_bytes() for i in range(args.files)]
            assert same, "Dask output differs from the local engine's"
            print(f"dask, {workers} local worker(s)  {rows / warm:>9,.0f} rows/s warm ({warm:.2f} s), "
                  f"{rows / cold:,.0f} rows/s cold ({cold:.2f} s); output = local engine's")
        # Other programs running at the same time skew the figures: this says whether they did.
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
