"""Take the README's screenshot of the HTML report: ``docs/summary-report.png``.

Labels ``datasets/sample_job_duties.csv`` with the shipped model in a temporary directory,
runs ``bpo-classify summarize ... --by role --weight hours_per_week --html`` on it as a user
would (shares of the hours per week), opens the page in headless Chromium
(``/usr/bin/chromium``, driven by Playwright) and saves the whole page.

Run: ``make screenshots`` (or ``.venv/bin/python docs/screenshot_report.py``)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from screenshot_review import ROOT, capture  # this folder is on sys.path when a script here runs


def main() -> int:
    from click.testing import CliRunner

    from bpo_classify.cli import cli

    out = ROOT / "docs" / "summary-report.png"
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # relative names in the report, as a user would type them
        try:
            for args in (["label", str(ROOT / "datasets" / "sample_job_duties.csv"), "--text-column", "duty", "-o", "labelled.csv"],
                         ["summarize", "labelled.csv", "--by", "role", "--weight", "hours_per_week", "--html", "report.html"]):
                result = CliRunner().invoke(cli, args)
                if result.exit_code != 0:
                    print(result.output, file=sys.stderr)
                    return 1
            capture(Path("report.html").resolve().as_uri(), out, 1000, 800)
        finally:
            os.chdir(here)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
