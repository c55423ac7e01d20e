"""Take the README's screenshot of the review page: ``docs/review-page.png``.

Labels ``datasets/sample_job_duties.csv`` with the shipped model in a temporary directory,
opens ``bpo-classify review``'s page for it in headless Chromium (``/usr/bin/chromium``,
driven by Playwright) and saves the first item as it appears.

Run: ``.venv/bin/python docs/screenshot_review.py``
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def capture(url: str, out: Path, width: int, height: int, ready: Callable[[Any], None] | None = None) -> None:
    """Open ``url`` in headless Chromium, wait for ``ready(page)`` if given, save the whole page as ``out``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        if ready is not None:
            ready(page)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> int:
    from bpo_classify import load_model
    from bpo_classify.corrections import ReviewSession
    from bpo_classify.labeling import label_csv
    from bpo_classify.review import make_server

    out = ROOT / "docs" / "review-page.png"
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # relative names, as a user would type them
        labelled = Path("sample_job_duties_labelled.csv")
        label_csv(ROOT / "datasets" / "sample_job_duties.csv", labelled, text_column="duty")
        server = make_server(ReviewSession(labelled, Path("corrections.csv"), load_model()), port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            capture(server.url, out, 1040, 760, lambda page: page.locator("#words-front li").first.wait_for())
        finally:
            server.shutdown()
            server.server_close()
            os.chdir(here)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
