"""Rewrite every golden case's expected output with the current model: `python tests/golden/regenerate.py`.

Run it after `make model` changes the shipped model, and review the diff.
"""

import json
import sys
from pathlib import Path

from click.testing import CliRunner

from bpo_classify.cli import cli

for case in sorted(Path(__file__).parent.iterdir()):
    if not case.is_dir():
        continue
    source = next(case.glob("input.*"))
    expected = case / f"expected{source.suffix}"
    args = json.loads((case / "args.json").read_text(encoding="utf-8"))
    result = CliRunner().invoke(cli, ["label", str(source), "-o", str(expected), *args], catch_exceptions=False)
    print(case.name, result.exit_code, result.output.strip(), file=sys.stderr)
