"""Cold start: `bpo-classify predict "process invoices"` as a whole process vs importing scikit-learn.

Goal (issue 15; earlier 0.35): predict takes at most 0.15 times as long as
`python -c "import sklearn.linear_model"`. Both are measured
in the same run, alternating, as the median of several wall-clock runs.

Run: `make bench` or `.venv/bin/python benchmarks/bench_cold_start.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
#: The most `predict` may take, as a share of importing scikit-learn's linear models.
GOAL = 0.15
COMMANDS = {
    "import sklearn.linear_model": [sys.executable, "-c", "import sklearn.linear_model"],
    'bpo-classify predict "process invoices"': [str(BIN / "bpo-classify"), "predict", "process invoices"],
    "bpo-classify --help": [str(BIN / "bpo-classify"), "--help"],
    "bpo-classify --version": [str(BIN / "bpo-classify"), "--version"],
}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


STEPS = """
import time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import hashlib
import bpo_classify.cli, bpo_classify.model as M, bpo_classify.modelfile as F
t2 = time.perf_counter()
data = F.read_model_bytes(M.default_model_path())
t3 = time.perf_counter()
hashlib.sha256(data[44:]).digest()
t4 = time.perf_counter()
header, arrays = F.loads(data)
t5 = time.perf_counter()
model = M._from_file_parts(header, arrays, "default")
t6 = time.perf_counter()
model.predict(["process invoices"])
t7 = time.perf_counter()
steps = [("import numpy", t1 - t0), ("import the package", t2 - t1), ("read the model file", t3 - t2),
         ("checksum", t4 - t3), ("decompress the arrays", t5 - t4 - (t4 - t3)),
         ("vocabularies and model", t6 - t5), ("predict one text", t7 - t6)]
print("\\n".join(f"  {name:<28} {seconds * 1000:6.0f} ms" for name, seconds in steps))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--steps", action="store_true", help="also time predict's steps inside one process")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():
        wall(cmd)  # warm the OS page cache once, as a user's second run would be
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():  # alternate, so load on the machine hits all alike
            times[name].append(wall(cmd))
    base = statistics.median(times["import sklearn.linear_model"])
    print(f"cold start, median of {args.runs} runs, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:<42} {med * 1000:7.0f} ms   ratio to sklearn import {med / base:.2f}")
    ratio = statistics.median(times['bpo-classify predict "process invoices"']) / base
    print(f"cold-start ratio (predict / import sklearn.linear_model): {ratio:.2f} (goal <= {GOAL}) {'OK' if ratio <= GOAL else 'MISSED'}")
    if args.steps:
        # loads() checks the checksum too: the decompression is its time less the checksum's.
        print("predict's steps, in one process:")
        subprocess.run([sys.executable, "-c", STEPS], check=True)


if __name__ == "__main__":
    main()
