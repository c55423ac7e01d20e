"""The golden cases: run one, compare it with its expected file, or rewrite the expected files.

The expected files are a contract: they change only when someone runs, from the
repository root, ``make goldens`` (``python -m tests.golden.regenerate``), after a
change that is meant to change labelling output (for example ``make model``), and
reviews the diff. Importing this module does nothing; pytest never collects it
(``tests/conftest.py`` lists it in ``collect_ignore``), and ``tests/test_labeling.py``
uses its functions to compare.

A case is a folder with ``input.<ext>``, ``args.json`` (the ``bpo-classify label``
options, a JSON list) and ``expected.<ext>``. A summary case is a folder with
``summarize.json`` (``{"input": a path relative to it, "args": [...]}``) and one expected
file per format: ``expected.txt``, ``.csv``, ``.json``, ``.md``; it is regenerated after the
label cases, whose outputs it may read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from bpo_classify.cli import cli

HERE = Path(__file__).resolve().parent


def cases(root: Path = HERE) -> list[Path]:
    """Every golden case folder under ``root``, in name order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "args.json").is_file())


def expected_path(case: Path) -> Path:
    """The case's expected output file, ``expected.<the input's extension>``."""
    return case / f"expected{next(case.glob('input.*')).suffix}"


def run_case(case: Path, out: Path) -> tuple[int, str]:
    """Label the case's input with its options into ``out``; return the exit code and the messages."""
    source = next(case.glob("input.*"))
    args = json.loads((case / "args.json").read_text(encoding="utf-8"))
    result = CliRunner().invoke(cli, ["label", str(source), "-o", str(out), *args], catch_exceptions=False)
    return result.exit_code, result.output


def compare(case: Path, produced: Path) -> str | None:
    """``None`` when ``produced`` is byte for byte the case's expected file, else what differs."""
    want, got = expected_path(case).read_bytes(), produced.read_bytes()
    if want == got:
        return None
    at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    line = want.count(b"\n", 0, at) + 1
    return f"{case.name}: output differs from {expected_path(case).name} at byte {at} (line {line}); " \
        f"expected {want[at:at + 40]!r}, got {got[at:at + 40]!r}"


#: ``summarize --format`` of each expected file of a summary case.
SUMMARY_FORMATS = {"txt": "text", "csv": "csv", "json": "json", "md": "markdown"}


def summary_cases(root: Path = HERE) -> list[Path]:
    """Every summary case folder under ``root``, in name order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "summarize.json").is_file())


def run_summary(case: Path, ext: str, out: Path) -> tuple[int, str]:
    """``bpo-classify summarize`` of the case's input in the format of ``expected.<ext>``, into ``out``."""
    spec = json.loads((case / "summarize.json").read_text(encoding="utf-8"))
    source = (case / spec["input"]).resolve()
    result = CliRunner().invoke(
        cli, ["summarize", str(source), *spec["args"], "--format", SUMMARY_FORMATS[ext], "-o", str(out)], catch_exceptions=False
    )
    return result.exit_code, result.output


def regenerate(root: Path = HERE) -> list[str]:
    """Rewrite every case's expected file from the current code; return one line per case."""
    lines = []
    for case in cases(root):
        code, output = run_case(case, expected_path(case))
        lines.append(f"{case.name}: exit {code} {output.strip()}")
    for case in summary_cases(root):
        codes = [run_summary(case, ext, case / f"expected.{ext}")[0] for ext in SUMMARY_FORMATS]
        lines.append(f"{case.name}: summarize exit {max(codes)} ({', '.join(SUMMARY_FORMATS)})")
    return lines


if __name__ == "__main__":
    for line in regenerate():
        print(line, file=sys.stderr)
