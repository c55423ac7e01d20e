"""`summarize --html`: the report's content read back from its HTML, escaping, self-containment, the CLI.

The page is parsed with the standard library's HTMLParser, so each check reads what a
browser would build (tests/test_report_browser.py opens it in Chromium too).
"""

from __future__ import annotations

import csv
import hashlib
import re
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bpo_classify.cli import cli
from bpo_classify.report_html import BAR_WIDTH, page
from bpo_classify.reporting import model_version
from bpo_classify.summary import summarize
from conftest import write_csv

LABELLED = Path(__file__).parent / "golden" / "sample_sheet" / "expected.csv"
ADDED = ["office", "office_confidence", "function", "function_confidence", "needs_review", "review_reason"]


class Page(HTMLParser):
    """Elements with their attributes and the text inside each (what the tests look for)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.stack: list[list] = []
        self.texts: list[tuple[str, dict[str, str], str]] = []  # (tag, attrs, full text) of each closed element
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag not in ("meta", "rect", "br", "img", "link"):
            self.stack.append([tag, attributes, ""])

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1][0] == tag:
            name, attrs, text = self.stack.pop()
            self.texts.append((name, attrs, text))
            if self.stack:
                self.stack[-1][2] += text

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2] += data

    def all(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def text_of(self, tag: str, **attrs: str) -> list[str]:
        return [text for t, a, text in self.texts if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _report(path: Path, model, by=("role",), weight=None, **kwargs) -> str:
    return page(summarize(path, by, weight), path, model, model_name="default", **kwargs)


def test_bars_towers_review_rows_and_provenance_match_the_file(model):
    """One stacked bar per role and the total, each front+back as wide as the bar; a tower bar per function;
    the review table lists exactly the rows with needs_review true, with their reason; provenance names the
    file's SHA-256, the model version and the date."""
    rows = _rows(LABELLED)
    html = _report(LABELLED, model, generated=datetime(2026, 3, 4, 5, 6, tzinfo=timezone.utc))
    doc = Page(html)
    roles = list(dict.fromkeys(r["role"] for r in rows))
    bars = doc.all("g", **{"class": "bar"})
    assert [b["data-group"] for b in bars] == [*roles, "total"]
    rects = [a for a in doc.all("rect") if a.get("class") in ("front-office", "back-office")]
    assert len(rects) >= len(bars)
    # Each bar's segments add up to the full width (every role here has labelled rows).
    widths = [float(a["width"]) for a in rects]
    assert sum(widths) == pytest.approx(BAR_WIDTH * len(bars), abs=0.1 * len(rects))
    front_share = sum(r["office"] == "front-office" for r in rows) / len(rows)
    total_front = [a for a in rects if a["class"] == "front-office"][-1]
    assert float(total_front["width"]) == pytest.approx(front_share * BAR_WIDTH, abs=0.05)
    functions = {r["function"] for r in rows if r["function"]}
    assert {g["data-function"] for g in doc.all("g", **{"class": "tower"})} == functions
    flagged = [(n, r) for n, r in enumerate(rows, 1) if r["needs_review"] == "true"]
    review = [t for t in doc.text_of("tr") if t.strip() and re.match(r"^\d+", t)]
    assert len(review) == len(flagged) > 0
    for (n, r), line in zip(flagged, review):
        assert line.startswith(str(n)) and r["duty"] in line and r["review_reason"] in line and r["role"] in line
    provenance = dict(zip(doc.text_of("dt"), doc.text_of("dd")))
    assert provenance["SHA-256"] == hashlib.sha256(LABELLED.read_bytes()).hexdigest()
    assert provenance["model"].startswith(model_version(model))
    assert provenance["generated"] == "2026-03-04 05:06 UTC"
    assert provenance["labelled file"] == LABELLED.name and provenance["rows"] == str(len(rows))


def test_the_page_fetches_nothing_and_runs_nothing(model):
    """No script, no link, no src or href to anywhere, no CSS url(); the CSP forbids any fetch as well."""
    html = _report(LABELLED, model)
    doc = Page(html)
    assert not doc.all("script") and not doc.all("link") and not doc.all("img") and not doc.all("iframe")
    assert not [a for _, a in doc.elements if {"src", "href", "srcset", "xlink:href"} & set(a)]
    assert "url(" not in html and "@import" not in html and "http" not in html.lower().replace("http-equiv", "")
    csp = doc.all("meta", **{"http-equiv": "Content-Security-Policy"})
    assert csp and csp[0]["content"].startswith("default-src 'none';")


def test_hours_per_tower_are_the_weights_of_its_rows(tmp_path, model):
    """With --weight the tower bars say the hours of their rows (summed from the file) and the bars are per hour."""
    header = ["role", "hours", "duty", *ADDED]
    rows = [
        ["Clerk", "30", "process invoices", "back-office", "0.99", "finance_accounting", "0.98", "false", ""],
        ["Clerk", "7.5", "run payroll", "back-office", "0.99", "payroll", "0.98", "false", ""],
        ["Agent", "40", "answer calls", "front-office", "0.99", "customer_service", "0.98", "false", ""],
        ["Agent", "2.5", "handle refunds", "front-office", "0.55", "customer_service", "0.5", "true", "mixed_task"],
    ]
    path = write_csv(tmp_path / "l.csv", [header, *rows])
    doc = Page(_report(path, model, weight="hours"))
    towers = {g: t for g, t in zip([a["data-function"] for a in doc.all("g", **{"class": "tower"})], doc.text_of("g", **{"class": "tower"}))}
    assert "42.5 h (53.1%)" in towers["customer_service"] and "30 h (37.5%)" in towers["finance_accounting"]
    assert "7.5 h (9.4%)" in towers["payroll"]
    assert "Hours per service tower" in doc.text_of("h2")
    assert [b["data-group"] for b in doc.all("g", **{"class": "bar"})] == ["Clerk", "Agent", "total"]


def test_every_text_from_the_file_is_escaped(tmp_path, model):
    """A duty holding a script, a role holding markup and a file name with an ampersand are shown as text, never as markup."""
    script = '<script>window.pwned = 1</script>'
    role = '<img src=x onerror="alert(1)"> & "Co"'
    header = ["role", "duty", *ADDED]
    rows = [[role, script, "front-office", "0.55", "customer_service", "0.5", "true", "mixed_task"],
            ["Clerk", "process invoices", "back-office", "0.99", "finance_accounting", "0.98", "false", ""]]
    path = write_csv(tmp_path / "a&b <x>.csv", [header, *rows])
    html = _report(path, model)
    assert "<script" not in html and "<img" not in html and "<x>" not in html
    doc = Page(html)
    assert not doc.all("script") and not doc.all("img")
    assert any(script in t for t in doc.text_of("td")) and any(role in t for t in doc.text_of("td"))
    assert role in [b["data-group"] for b in doc.all("g", **{"class": "bar"})]
    assert "Duty inventory: a&b <x>.csv" in doc.text_of("h1")


def test_review_list_is_capped_and_says_so(tmp_path, model):
    """Past REVIEW_LIMIT rows the list stops and says how many the file has."""
    header = ["duty", *ADDED]
    rows = [[f"task {i}", "back-office", "0.6", "data_processing", "0.5", "true", "low_confidence"] for i in range(1205)]
    path = write_csv(tmp_path / "l.csv", [header, *rows])
    html = page(summarize(path), path, model, model_name="m")
    assert "<h2>Rows that need review (1,205)</h2>" in html
    assert "The first 1,000 of 1,205 are listed" in html
    assert html.count('<span class="reason">') == 1000


def test_cli_writes_the_report_atomically_beside_the_summary(tmp_path, runner, model):
    """--html writes the page (and nothing else there), stdout keeps the summary, stderr says where the page went."""
    out = tmp_path / "report.html"
    result = runner.invoke(cli, ["summarize", str(LABELLED), "--by", "role", "--html", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    plain = runner.invoke(cli, ["summarize", str(LABELLED), "--by", "role"])
    assert result.stdout == plain.stdout
    assert result.stderr == f"HTML report written to {out}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and len(Page(html).all("g", **{"class": "bar"})) == 16


def test_cli_errors_are_one_line_and_leave_no_report(tmp_path, runner):
    """stdin cannot be read twice (usage, 2); a missing --by column or directory is a runtime error (1); no file left."""
    result = runner.invoke(cli, ["summarize", "-", "--html", str(tmp_path / "r.html")], input=LABELLED.read_text())
    assert result.exit_code == 2 and "--html reads the labelled file again" in result.output
    result = runner.invoke(cli, ["summarize", str(LABELLED), "--by", "team", "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "column 'team' not found" in result.output
    result = runner.invoke(cli, ["summarize", str(LABELLED), "--html", str(tmp_path / "no" / "r.html")])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_readme_html_example_works_as_shown(tmp_path, runner, monkeypatch):
    """The README's `summarize ... --html` example, run on the sample sheet as labelled there, prints what the README shows."""
    import shlex

    from test_readme import examples

    [example] = [e for e in examples() if "--html" in e.command]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labelled.csv").write_bytes(LABELLED.read_bytes())  # what the README's label example writes
    result = runner.invoke(cli, shlex.split(example.command)[1:], catch_exceptions=False)
    assert result.exit_code == 0 and result.output == example.output
    assert Page((tmp_path / "report.html").read_text(encoding="utf-8")).all("g", **{"class": "bar"})
    assert (tmp_path / "summary.json").read_text(encoding="utf-8").startswith("{")
