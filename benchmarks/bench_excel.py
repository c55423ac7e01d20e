"""Excel in and out at scale: `bpo-classify label` to `.xlsx` against `.csv`, and a workbook read back, time and memory.

For each size (10,000 and 100,000 generated job-posting rows, ``benchmarks/jobduties.py``;
``--quick``: 10,000 only), each a separate process timed from start to exit with its peak
RSS (``bench_label.timed``, one fresh helper process per run):

* ``label in.csv -o out.csv --jobs 1`` (the reference);
* ``label in.csv -o out.xlsx --jobs 1`` (XlsxWriter, constant memory: peak RSS should not
  grow with the rows);
* ``label out.xlsx -o again.csv --prefix x_ --jobs 1`` (python-calamine holds the sheet in
  memory while it is read: peak RSS grows with the cells).

Prints rows/s and peak RSS of each, and the ratios of the 100,000-row run to the 10,000-row
one; results also go to ``benchmarks/out/bench_excel.json``.

Run: ``.venv/bin/python benchmarks/bench_excel.py`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

import jobduties  # noqa: E402
from bench_label import timed  # noqa: E402

BIN = Path(sys.executable).parent / "bpo-classify"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows only")
    sizes = [10_000] if parser.parse_args().quick else [10_000, 100_000]
    OUT.mkdir(exist_ok=True)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for rows in sizes:
        source = jobduties.write(OUT / f"excel_{rows}.csv", rows)
        runs = {
            "csv_out": [str(BIN), "label", str(source), "--text-column", "duty", "-q", "-j", "1", "-o", str(OUT / f"excel_{rows}_out.csv")],
            "xlsx_out": [str(BIN), "label", str(source), "--text-column", "duty", "-q", "-j", "1", "-o", str(OUT / f"excel_{rows}.xlsx")],
            "xlsx_in": [str(BIN), "label", str(OUT / f"excel_{rows}.xlsx"), "--text-column", "duty", "--prefix", "x_", "-q", "-j", "1", "-o", str(OUT / f"excel_{rows}_again.csv")],
        }
        results[str(rows)] = {}
        for name, cmd in runs.items():
            r = timed(cmd)
            results[str(rows)][name] = {"wall": r["wall"], "rows_per_s": rows / r["wall"], "peak_rss_mib": r["largest_rss"] / 2**20}
            print(f"  {rows:>7,} rows  {name:8}  {rows / r['wall']:9,.0f} rows/s  {r['wall']:6.2f} s  peak RSS {r['largest_rss'] / 2**20:6.0f} MiB", flush=True)
    if len(sizes) > 1:
        small, big = results[str(sizes[0])], results[str(sizes[-1])]
        for name in ("csv_out", "xlsx_out", "xlsx_in"):
            print(f"  {name}: peak RSS {sizes[-1]:,} / {sizes[0]:,} rows = {big[name]['peak_rss_mib'] / small[name]['peak_rss_mib']:.2f}")
    (OUT / "bench_excel.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
