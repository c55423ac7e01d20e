"""`summarize` reads what `label` wrote in every format it writes: CSV, TSV, gzip, Parquet, Excel, with or without --prefix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bpo_classify.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "sample_job_duties.csv"
FORMATS = ["csv", "tsv", "csv.gz", "jsonl", "parquet", "xlsx"]


def invoke(*args: object):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def summary(path: Path, *args: str) -> dict:
    result = invoke("summarize", path, "--by", "department", "--by", "role", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    body.pop("source")  # the file's name and hash differ by format; everything else must not
    return body


@pytest.mark.parametrize("prefix", ["", "bpo_"])
@pytest.mark.parametrize("ext", [e for e in FORMATS if e != "jsonl"])
def test_summarize_reads_every_label_output(tmp_path, ext, prefix):
    """The summary of a labelled .tsv, .csv.gz, .parquet or .xlsx equals the summary of the labelled .csv."""
    if ext == "parquet":
        pytest.importorskip("pyarrow")
    if ext == "xlsx":
        pytest.importorskip("python_calamine")
    reference, labelled = tmp_path / "ref.csv", tmp_path / f"labelled.{ext}"
    for out in (reference, labelled):
        assert invoke("label", SAMPLE, "--text-column", "duty", "--prefix", prefix, "-o", out).exit_code == 0
    expected = summary(reference)
    assert expected["total"]["rows"] == 50 and expected["groups"]
    assert summary(labelled) == expected
    assert summary(labelled, "--prefix", prefix) == expected
    assert invoke("summarize", labelled, "--prefix", "zz_").exit_code == 1  # a wrong prefix is still an error


def test_summarize_names_what_it_cannot_read(tmp_path):
    (tmp_path / "l.jsonl").write_text('{"a": 1}\n', encoding="utf-8")
    result = invoke("summarize", tmp_path / "l.jsonl")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
