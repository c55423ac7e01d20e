"""`bpo-classify summarize`: golden outputs in every format, the JSON schema, weights, prefixes, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bpo_classify.cli import cli
from bpo_classify.summary import SCHEMA, summarize
from conftest import write_csv
from golden.regenerate import SUMMARY_FORMATS, run_summary, summary_cases

GOLDEN = Path(__file__).parent / "golden"
LABELLED = GOLDEN / "sample_sheet" / "expected.csv"
ADDED = ["office", "office_confidence", "function", "function_confidence", "needs_review", "review_reason"]


@pytest.mark.parametrize("ext", sorted(SUMMARY_FORMATS))
@pytest.mark.parametrize("case", summary_cases(GOLDEN), ids=lambda p: p.name)
def test_summary_golden(case, ext, tmp_path):
    """Each format of each summary case is byte for byte its expected file (rewrite only with `make goldens`)."""
    code, output = run_summary(case, ext, tmp_path / f"out.{ext}")
    assert code == 0, output
    assert (tmp_path / f"out.{ext}").read_bytes() == (case / f"expected.{ext}").read_bytes()


def test_summary_golden_fails_on_one_changed_byte(tmp_path):
    """A copy of the case whose expected text differs by one byte no longer matches what summarize writes."""
    case = tmp_path / "case"
    shutil.copytree(GOLDEN / "summary_by_role", case)
    (case / "summarize.json").write_text(json.dumps({"input": str(LABELLED), "args": ["--by", "role"]}))
    expected = bytearray((case / "expected.txt").read_bytes())
    expected[40] = ord("#")
    (case / "expected.txt").write_bytes(bytes(expected))
    run_summary(case, "txt", tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_bytes() != (case / "expected.txt").read_bytes()


def test_json_schema_is_pinned():
    """The keys of schema bpo-classify/summary/1: within a version keys are only added."""
    s = summarize(LABELLED, by=["role", "location"])
    assert s["schema"] == SCHEMA == "bpo-classify/summary/1"
    assert set(s) == {"schema", "source", "by", "weight", "groups", "total"}
    assert set(s["source"]) == {"name", "sha256", "rows"}
    group_keys = {"group", "rows", "labelled_rows", "weight", "front_office", "back_office", "front_share",
                  "back_share", "functions", "needs_review", "review_reasons"}
    assert all(set(g) == group_keys for g in s["groups"]) and set(s["total"]) == group_keys
    assert sum(g["rows"] for g in s["groups"]) == s["total"]["rows"] == 50
    assert all(set(g["group"]) == {"role", "location"} for g in s["groups"])
    for g in [*s["groups"], s["total"]]:
        assert g["front_share"] + g["back_share"] == pytest.approx(1.0)
        assert sum(g["functions"].values()) == pytest.approx(1.0, abs=1e-3)


def test_weights_prefix_and_empty_rows(tmp_path):
    """Shares follow --weight; a --prefix'd file is found by itself; empty texts count as rows to review only."""
    path = write_csv(tmp_path / "l.csv", [
        ["site", "hours", *(f"bpo_{c}" for c in ADDED)],
        ["Manila", "30", "back-office", "0.99", "payroll", "0.98", "false", ""],
        ["Manila", "10", "front-office", "0.99", "sales", "0.98", "false", ""],
        ["Cebu", "8", "", "", "", "", "true", "empty"],
    ])
    s = summarize(path, by=["site"], weight="hours")
    manila, cebu = s["groups"]
    assert (manila["front_share"], manila["functions"], manila["weight"]) == (0.25, {"payroll": 0.75, "sales": 0.25}, 40.0)
    assert (cebu["rows"], cebu["labelled_rows"], cebu["front_share"], cebu["review_reasons"]) == (1, 0, None, {"empty": 1})
    assert summarize(path)["total"]["front_share"] == 0.5


def test_errors_are_one_line(runner, tmp_path):
    """A file that was never labelled, a missing --by column and a weight that is not a number: exit 1, one line."""
    plain = write_csv(tmp_path / "plain.csv", [["duty"], ["process invoices"]])
    result = runner.invoke(cli, ["summarize", str(plain)])
    assert result.exit_code == 1 and "label it first" in result.output and len(result.output.splitlines()) == 1
    result = runner.invoke(cli, ["summarize", str(LABELLED), "--by", "team"])
    assert result.exit_code == 1 and "column 'team' not found" in result.output
    bad = write_csv(tmp_path / "bad.csv", [["hours", *ADDED], ["lots", "back-office", "0.9", "payroll", "0.9", "false", ""]])
    result = runner.invoke(cli, ["summarize", str(bad), "--weight", "hours"])
    assert result.exit_code == 1 and "not a number" in result.output
