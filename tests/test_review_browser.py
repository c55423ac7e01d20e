"""The review page end to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Skipped, saying why, where there is no Chromium or no Playwright. The server runs as the
real program (``python -m bpo_classify review``) in a child process, bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import read_csv, start_cli, write_csv

from bpo_classify.outputs import ADDED_COLUMNS

CHROMIUM = os.environ.get("BPO_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
pytestmark = [
    pytest.mark.skipif(not (Path(CHROMIUM).is_file() or shutil.which("chromium")), reason=f"no Chromium at {CHROMIUM}: apt-get install chromium"),
]

#: A labelled file as `label` writes it; the flagged rows' function_confidence sets the queue's order.
HEADER = ["role", "duty", *ADDED_COLUMNS]
ROWS = [
    ["Clerk", "process vendor invoices", "back-office", "0.9990", "finance_accounting", "0.9900", "false", ""],
    ["Agent", "handle customer refunds", "front-office", "0.5500", "customer_service", "0.3000", "true", "mixed_task"],
    ["Agent", "update customer records after calls", "back-office", "0.6000", "data_processing", "0.2000", "true", "low_confidence"],
    ["Lead", "coordinate the weekly sales meeting", "back-office", "0.6100", "human_resources", "0.1000", "true", "low_confidence"],
    ["Agent", "handle customer refunds", "front-office", "0.5500", "customer_service", "0.3000", "true", "mixed_task"],
    ["Clerk", "procesar nominas", "back-office", "0.7000", "payroll", "0.4000", "true", "unfamiliar_text"],
    ["Clerk", "reconcile timesheets with payroll", "back-office", "0.7500", "payroll", "0.5000", "true", "low_confidence"],
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium"), args=ARGS)
        yield browser
        browser.close()


def start_review(tmp_path: Path, labelled: Path, corrections: Path) -> tuple[subprocess.Popen, str]:
    """The review server on a free port; its URL, read from what it prints."""
    proc = start_cli("review", labelled, "--port", "0", "--corrections", corrections, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if found:
            return proc, found.group(0)
        assert proc.poll() is None and line, f"the review server stopped: {line}{proc.stderr.read()}"
    raise AssertionError("the review server printed no address in 60 s")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(timeout=30)
    proc.stderr.close()


def decisions(path: Path) -> list[tuple[str, str, str]]:
    rows = read_csv(path)
    assert rows[0][:4] == ["text", "office", "function", "decided_at"]
    return [(r[0], r[1], r[2]) for r in rows[1:]]


def progress(page) -> str:
    return page.locator("#progress-text").inner_text()


def test_review_page_by_keyboard_survives_reload_and_kill(browser, tmp_path):
    """Three rows corrected by keyboard are on disk at once, still there after a reload, and after the
    server is killed (SIGKILL) mid-session and started again; undo and skip work from the keyboard."""
    labelled = write_csv(tmp_path / "duties_labelled.csv", [HEADER, *ROWS])
    before = labelled.read_bytes()
    corrections = tmp_path / "corrections.csv"
    proc, url = start_review(tmp_path, labelled, corrections)
    try:
        page = browser.new_page()
        page.goto(url)
        text = page.locator("#text")
        # Least certain first: function_confidence 0.1, 0.2, 0.3 (two rows), 0.4, 0.5.
        page.wait_for_function("document.querySelector('#text').textContent.length > 0")
        assert text.inner_text() == "coordinate the weekly sales meeting"
        assert progress(page) == "0 of 5 texts done (0 of 6 rows) · 5 to do"
        page.locator("#words-front li").first.wait_for()  # the explanation arrives
        page.keyboard.press("f")   # front-office: customer_service, marketing_outreach, reception, sales, technical_support
        page.keyboard.press("4")   # sales
        page.wait_for_function("document.querySelector('#text').textContent === 'update customer records after calls'")
        page.keyboard.press("Enter")  # accept the model's own answer: back-office, data_processing
        page.wait_for_function("document.querySelector('#text').textContent === 'handle customer refunds'")
        assert "2 rows with this text" in page.locator("#count").inner_text()
        page.keyboard.press("/")
        page.keyboard.type("claims")
        page.keyboard.press("Enter")  # claims_processing, a back-office function, found through the filter
        page.wait_for_function("document.querySelector('#text').textContent === 'procesar nominas'")
        assert progress(page) == "3 of 5 texts done (4 of 6 rows) · 2 to do"
        expected = [
            ("coordinate the weekly sales meeting", "front-office", "sales"),
            ("update customer records after calls", "back-office", "data_processing"),
            ("handle customer refunds", "back-office", "claims_processing"),
        ]
        assert decisions(corrections) == expected  # written at once, before the page moved on

        page.reload()
        page.wait_for_function("document.querySelector('#text').textContent === 'procesar nominas'")
        assert progress(page) == "3 of 5 texts done (4 of 6 rows) · 2 to do"

        page.keyboard.press("s")  # skip "procesar nominas"
        page.wait_for_function("document.querySelector('#text').textContent === 'reconcile timesheets with payroll'")
        page.keyboard.press("u")  # undo the skip
        page.wait_for_function("document.querySelector('#text').textContent === 'procesar nominas'")
        page.keyboard.press("b")
        page.keyboard.press("9")  # back-office, ninth: payroll
        page.wait_for_function("document.querySelector('#progress-text').textContent.startsWith('4 of 5')")
        assert decisions(corrections)[-1] == ("procesar nominas", "back-office", "payroll")
        page.keyboard.press("u")  # take it back: gone from the file too
        page.wait_for_function("document.querySelector('#progress-text').textContent.startsWith('3 of 5')")
        assert decisions(corrections) == expected
        page.keyboard.press("b")
        page.keyboard.press("0")  # back-office, tenth: supply_chain
        page.wait_for_function("document.querySelector('#progress-text').textContent.startsWith('4 of 5')")
    finally:
        stop(proc, signal.SIGKILL)  # killed mid-session: no chance to save anything more
    assert decisions(corrections) == [*expected, ("procesar nominas", "back-office", "supply_chain")]
    assert not list(tmp_path.glob(".corrections.csv.*.tmp"))

    proc, url = start_review(tmp_path, labelled, corrections)
    try:
        page.goto(url)
        page.wait_for_function("document.querySelector('#text').textContent === 'reconcile timesheets with payroll'")
        assert progress(page) == "4 of 5 texts done (5 of 6 rows) · 1 to do"
        page.locator("#functions button[data-function='payroll']").click()  # the mouse works too
        page.locator("#done").wait_for()
        assert progress(page) == "5 of 5 texts done (6 of 6 rows) · 0 to do"
        page.close()
    finally:
        stop(proc)
    assert len(decisions(corrections)) == 5
    assert labelled.read_bytes() == before  # the input is never modified
