"""The `summarize --html` report in a real headless Chromium (Debian's /usr/bin/chromium).

Two ways in: Chromium alone (``--dump-dom`` for the DOM it built, ``--screenshot`` for the
pixels it painted), and Chromium driven by Playwright, which sees every request the page
makes and every message it logs. Skipped, saying why, where there is no Chromium (or, for
the second, no Playwright). Each run gets a fresh ``--user-data-dir``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bpo_classify.report_html import COLOURS, page
from bpo_classify.summary import summarize
from conftest import write_csv
from test_report_html import ADDED, LABELLED, Page

CHROMIUM = os.environ.get("BPO_CHROMIUM", "/usr/bin/chromium")
FOUND = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
]
pytestmark = pytest.mark.skipif(not FOUND, reason=f"no Chromium at {CHROMIUM} or on PATH: apt-get install chromium")
SCRIPT = "<script>document.title = 'pwned'; window.pwned = 1</script>"


@pytest.fixture(scope="module")
def reports(model, tmp_path_factory) -> dict[str, Path]:
    """The sample sheet's report by role, and one whose duty and role hold markup."""
    d = tmp_path_factory.mktemp("reports")
    hostile = write_csv(d / "hostile.csv", [
        ["role", "duty", *ADDED],
        ['<img src="http://127.0.0.1:9/x.png">', SCRIPT, "front-office", "0.55", "customer_service", "0.5", "true", "mixed_task"],
        ["Clerk", "process invoices", "back-office", "0.99", "finance_accounting", "0.98", "false", ""],
    ])
    out = {}
    for name, source in (("sample", LABELLED), ("hostile", hostile)):
        out[name] = d / f"{name}.html"
        out[name].write_text(page(summarize(source, ["role"]), source, model, model_name="default"), encoding="utf-8")
    return out


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Chromium headless with a fresh profile; its output (the DOM with --dump-dom)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([FOUND, *ARGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_chromium_builds_the_bars_and_the_review_rows(reports, tmp_path):
    """The DOM Chromium built from the page has the 16 bars (15 roles and the total), a bar per service tower,
    both rows to review, and no script element."""
    dom = Page(chromium(tmp_path, "--dump-dom", reports["sample"].as_uri()).stdout)
    assert len(dom.all("g", **{"class": "bar"})) == 16
    assert len(dom.all("g", **{"class": "tower"})) == 15
    review = [t for t in dom.text_of("tr") if t[:1].isdigit()]
    assert len(review) == 2 and "Handle customer refunds" in review[1] and "mixed_task" in review[1]
    assert not dom.all("script")


def test_chromium_shows_markup_from_the_file_as_text(reports, tmp_path):
    """A duty holding a script is text in the DOM Chromium built, and the script never ran (the title is the page's)."""
    dom = Page(chromium(tmp_path, "--dump-dom", reports["hostile"].as_uri()).stdout)
    assert not dom.all("script") and not dom.all("img")
    assert any(SCRIPT in t for t in dom.text_of("td"))
    assert dom.text_of("title")[0] == "Duty inventory: hostile.csv"  # the page's own, not the script's


def test_chromium_paints_both_offices_colours(reports, tmp_path):
    """The screenshot Chromium paints holds the two offices' colours over thousands of pixels: the bars were drawn."""
    image = pytest.importorskip("matplotlib.image", reason="matplotlib (the plots extra) is not installed")
    shot = tmp_path / "shot.png"
    chromium(tmp_path, "--window-size=1100,1600", f"--screenshot={shot}", reports["sample"].as_uri())
    pixels = (image.imread(shot)[:, :, :3] * 255).round().astype(int)
    for colour in COLOURS.values():
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        assert ((abs(pixels - rgb) <= 2).all(axis=2)).sum() > 5000, colour


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=FOUND, args=ARGS)
        yield browser
        browser.close()


def test_the_page_requests_nothing_but_itself(browser, reports):
    """Opened in Chromium, each page loads only its own file: no request to any host, no console error
    (a blocked fetch or a CSP violation would log one), no script run; the bars have their widths on screen."""
    for name, path in reports.items():
        tab = browser.new_page(viewport={"width": 1100, "height": 900})
        requests, messages = [], []
        tab.on("request", lambda r: requests.append(r.url))
        tab.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
        tab.goto(path.as_uri())
        tab.wait_for_load_state("load")
        assert requests == [path.as_uri()], requests
        assert [m for m in messages if m.startswith("error")] == []
        assert tab.evaluate("window.pwned === undefined && document.scripts.length === 0")
        widths = tab.eval_on_selector_all("g.bar rect", "rs => rs.map(r => r.getBoundingClientRect().width)")
        assert widths and min(widths) > 0
        tab.close()
