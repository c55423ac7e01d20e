"""The review loop without a browser: the queue, the corrections file, apply-corrections,
train --add, evaluate --compare, and the review server's JSON API and errors."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import read_csv, write_csv

from bpo_classify.cli import cli
from bpo_classify.corrections import (
    CORRECTION_COLUMNS, Addition, CorrectionsFile, ReviewSession, apply_corrections, combine, load_additions, queue,
)
from bpo_classify.corpus import LabelledData, load_labelled
from bpo_classify.errors import CorpusError, MissingColumnError
from bpo_classify.model import save_model
from bpo_classify.outputs import ADDED_COLUMNS
from bpo_classify.policy import FUNCTION_OFFICE

HEADER = ["site", "duty", *ADDED_COLUMNS]
ROWS = [
    ["Manila", "process vendor invoices", "back-office", "0.9990", "finance_accounting", "0.9900", "false", ""],
    ["Manila", "handle customer refunds", "front-office", "0.5500", "customer_service", "0.3000", "true", "mixed_task"],
    ["Cebu", "update customer records after calls", "back-office", "0.6000", "data_processing", "0.2000", "true", "low_confidence"],
    ["Cebu", "", "", "", "", "", "true", "empty"],
    ["Pune", "handle customer refunds", "front-office", "0.5500", "customer_service", "0.3000", "true", "mixed_task"],
    ["Pune", "reconcile timesheets with payroll", "back-office", "0.7500", "payroll", "0.2000", "true", "low_confidence"],
]


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "duties_labelled.csv", [HEADER, *ROWS])


def test_queue_groups_identical_texts_least_certain_first(labelled, model):
    """Flagged rows only, blank texts left out, one group per text with its rows; ties go to the
    larger group, then the earlier; the runners-up are the office's other functions, below the shown one."""
    groups = queue(labelled, model)
    assert [(g.text, g.rows) for g in groups] == [
        ("update customer records after calls", [3]),
        ("reconcile timesheets with payroll", [6]),
        ("handle customer refunds", [2, 5]),
    ]
    assert [g.id for g in groups] == [0, 1, 2]
    assert groups[0].columns == {"site": "Cebu"} and groups[0].review_reason == "low_confidence"
    for g in groups:
        assert len(g.runners_up) == 3
        assert all(FUNCTION_OFFICE[f] == g.office and f != g.function for f, _ in g.runners_up)
        probabilities = [p for _, p in g.runners_up]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= g.office_confidence + 1e-9  # on the scale of function_confidence


def test_queue_needs_a_labelled_file(tmp_path, model, runner):
    """A file without the labelling columns is refused with a one-line error naming the fix."""
    plain = write_csv(tmp_path / "plain.csv", [["duty"], ["process invoices"]])
    with pytest.raises(MissingColumnError, match="label it first"):
        queue(plain, model)
    result = runner.invoke(cli, ["review", str(plain), "--port", "0"])
    assert result.exit_code == 1
    assert result.output == f"Error: {plain} is not a labelled file: it has no office, function and needs_review columns; label it first with `bpo-classify label`\n"


def test_each_decision_is_on_disk_at_once_and_undo_too(tmp_path):
    """record() writes the file before returning (a new reader sees it); deciding a text again
    replaces its decision; undo takes back the latest, on disk too; a pair the policy forbids is refused."""
    path = tmp_path / "corrections.csv"
    store = CorrectionsFile(path)
    store.record("answer the phones", "front-office", "reception", rows=2)
    store.record("file the invoices", "back-office", "data_processing")
    assert [d.function for d in CorrectionsFile(path).decisions()] == ["reception", "data_processing"]
    store.record("answer the phones", "front-office", "customer_service")
    rows = read_csv(path)
    assert rows[0] == list(CORRECTION_COLUMNS)
    assert [(r[0], r[2]) for r in rows[1:]] == [("file the invoices", "data_processing"), ("answer the phones", "customer_service")]
    assert store.undo().text == "answer the phones"
    assert [d.text for d in CorrectionsFile(path).decisions()] == ["file the invoices"]
    with pytest.raises(CorpusError, match="belongs to back-office"):
        store.record("run payroll", "front-office", "payroll")
    assert len(CorrectionsFile(path)) == 1
    assert not list(tmp_path.glob(".corrections.csv.*"))  # no temporary file left behind


def test_apply_corrections_replaces_reviewed_labels(labelled, tmp_path, runner):
    """Reviewed rows (every row of a decided text) get the person's labels, needs_review false and
    reviewed true; the rest is unchanged; the input is not modified."""
    corrections = tmp_path / "corrections.csv"
    store = CorrectionsFile(corrections)
    store.record("handle customer refunds", "back-office", "claims_processing")
    store.record("update customer records after calls", "back-office", "data_processing")
    store.record("a text in no row", "back-office", "payroll")
    before = labelled.read_bytes()
    out = tmp_path / "final.csv"
    result = runner.invoke(cli, ["apply-corrections", str(labelled), str(corrections), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == f"6 rows written, 3 reviewed (2 relabelled); 1 decision(s) matched no row -> {out}\n"
    rows = read_csv(out)
    assert rows[0] == [*HEADER, "reviewed"]
    assert rows[2] == ["Manila", "handle customer refunds", "back-office", "0.5500", "claims_processing", "0.3000", "false", "mixed_task", "true"]
    assert rows[5][2:5] == ["back-office", "0.5500", "claims_processing"] and rows[5][-1] == "true"
    assert rows[3][-3:] == ["false", "low_confidence", "true"]
    assert rows[1] == [*ROWS[0], "false"] and rows[6] == [*ROWS[5], "false"]
    assert labelled.read_bytes() == before
    again = runner.invoke(cli, ["apply-corrections", str(labelled), str(corrections), "-o", str(labelled)])
    assert again.exit_code == 1 and "is the labelled file itself" in again.output


def test_a_bad_corrections_file_names_its_row(labelled, tmp_path, runner):
    """apply-corrections refuses a corrections file whose row pairs an office with another office's function."""
    bad = write_csv(tmp_path / "bad.csv", [["text", "office", "function"], ["a", "back-office", "payroll"], ["b", "front-office", "payroll"]])
    result = runner.invoke(cli, ["apply-corrections", str(labelled), str(bad), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 1
    assert result.output == f"Error: {bad}: row 2: function 'payroll' belongs to back-office, not front-office\n"
    assert not (tmp_path / "out.csv").exists()


def test_train_add_refuses_contradictions_with_row_numbers(tmp_path, runner):
    """train --add stops before training when a correction contradicts the policy's pairing, listing the rows."""
    bad = write_csv(tmp_path / "corrections.csv", [
        ["text", "office", "function"], ["process invoices", "back-office", "finance_accounting"],
        ["answer calls", "back-office", "customer_service"], ["run payroll", "front-office", "payroll"],
    ])
    result = runner.invoke(cli, ["train", "--add", str(bad), "--cv", "0", "--out", str(tmp_path / "m.bpoc")])
    assert result.exit_code == 1
    assert "office contradicts the policy's office for the function (rows 2, 3)" in result.output
    assert not (tmp_path / "m.bpoc").exists()
    zero = runner.invoke(cli, ["train", "--add", str(bad), "--add-weight", "0"])
    assert zero.exit_code == 2


def test_combine_lets_corrections_replace_corpus_rows(small_corpus, tmp_path):
    """A correction replaces the corpus row with the same (normalised) text and carries its weight."""
    text = small_corpus.texts[0]
    path = write_csv(tmp_path / "c.csv", [["text", "office", "function"], [text.upper() + " ", "front-office", "sales"], ["brand new task", "back-office", "payroll"]])
    data, weights, replaced = combine(small_corpus, load_additions([path], weight=3.0))
    assert replaced == 1 and len(data) == len(small_corpus) + 1
    assert data.texts[-2:] == [text.upper() + " ", "brand new task"] and data.functions[-2] == "sales"
    assert weights.tolist() == [1.0] * (len(small_corpus) - 1) + [3.0, 3.0]


@pytest.mark.slow
def test_train_add_learns_the_corrections_and_records_them(small_corpus, tmp_path):
    """Trained with corrections at weight, the model gives the corrected labels to the corrected texts,
    keeps both detectors (the bundled side sets), and its metadata records the file's rows and SHA-256."""
    from bpo_classify.corrections import file_sha256
    from bpo_classify.training import train

    texts = [t for t, f in zip(small_corpus.texts, small_corpus.functions) if f == "payroll"][:3]
    path = write_csv(tmp_path / "corrections.csv", [["text", "office", "function"], *[[t, "front-office", "sales"] for t in texts]])
    plain = train(small_corpus, cv=0, seed=0, ambiguous=[], not_tasks=[]).model
    assert {p.function for p in plain.predict(texts)} == {"payroll"}
    result = train(small_corpus, cv=0, seed=0, add=[path], add_weight=20.0)
    assert [p.function for p in result.model.predict(texts)] == ["sales"] * 3
    assert result.model.mixed_coef is not None and result.model.not_a_task_coef is not None
    added = result.model.metadata["training_data"]["added"]
    assert added == {"files": [{"source": "corrections.csv", "rows": 3, "sha256": file_sha256(path), "weight": 20.0}], "replaced_rows": 3}


def test_evaluate_compare_shows_both_models(small_training, tmp_path, runner):
    """evaluate --compare scores both models on the same file, side by side, with the difference."""
    other = tmp_path / "small.bpoc"
    save_model(small_training.model, other)
    held_out = write_csv(tmp_path / "held_out.csv", [["text", "office", "function"], ["process vendor invoices", "back-office", "finance_accounting"],
                                                      ["answer customer calls about billing", "front-office", "customer_service"]])
    result = runner.invoke(cli, ["evaluate", "--data", str(held_out), "--compare", str(other), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert [m["name"] for m in report["models"]] == ["default model", str(other)]
    assert report["files"][0]["rows"] == 2 and len(report["files"][0]["scores"]) == 2
    text = runner.invoke(cli, ["evaluate", "--data", str(held_out), "--compare", str(other)], catch_exceptions=False).output
    a, b = (s["office"]["accuracy"] for s in report["files"][0]["scores"])
    line = next(line for line in text.splitlines() if line.strip().startswith("office accuracy"))
    assert line.split()[2:] == [f"{a:.3f}", f"{b:.3f}", f"{b - a:+.3f}"]
    assert runner.invoke(cli, ["evaluate", "--compare", str(other)]).exit_code == 2


# -- the server's API ---------------------------------------------------------------------------
@pytest.fixture
def server(labelled, tmp_path, model):
    from bpo_classify.review import make_server

    srv = make_server(ReviewSession(labelled, tmp_path / "corrections.csv", model), port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(server, path, body=None, *, content_type="application/json", method=None, host=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(server.url.rstrip("/") + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_api_decides_undoes_and_explains(server, tmp_path):
    """The page's calls: the queue and progress, an item's words each way, a decision on disk, an undo."""
    status, state = call(server, "/api/state")
    assert status == 200 and state["progress"] == {"done": 0, "todo": 3, "total": 3, "done_rows": 0, "todo_rows": 4, "total_rows": 4}
    assert state["functions"]["front-office"] == ["customer_service", "marketing_outreach", "reception", "sales", "technical_support"]
    status, item = call(server, "/api/items/2")
    assert status == 200 and item["text"] == "handle customer refunds" and item["count"] == 2
    assert item["words"]["front"] and all(w["contribution"] > 0 for w in item["words"]["front"])
    assert all(w["contribution"] < 0 for w in item["words"]["back"])
    status, answer = call(server, "/api/decisions", {"id": 2, "office": "back-office", "function": "claims_processing"})
    assert status == 200 and answer["progress"]["done_rows"] == 2
    assert read_csv(tmp_path / "corrections.csv")[1][:3] == ["handle customer refunds", "back-office", "claims_processing"]
    status, undone = call(server, "/api/undo", {})
    assert status == 200 and undone["id"] == 2 and undone["progress"]["done"] == 0
    assert len(read_csv(tmp_path / "corrections.csv")) == 1


@pytest.mark.parametrize("request_, status, code", [
    (("/nowhere",), 404, "not_found"),
    (("/api/items/99",), 404, "not_found"),
    (("/api/state", {}), 405, "method_not_allowed"),
    (("/api/decisions", {"id": 0, "office": "front-office", "function": "payroll"}), 400, "invalid_decision"),
    (("/api/decisions", {"id": 0}), 400, "bad_request"),
    (("/api/decisions", b"{not json"), 400, "bad_request"),
    (("/api/decisions", {"id": 0, "office": "back-office", "function": "payroll"}, "text/plain"), 415, "unsupported_media_type"),
    (("/api/decisions", {"id": 7, "office": "back-office", "function": "payroll"}), 404, "not_found"),
])
def test_api_errors_have_one_shape(server, tmp_path, request_, status, code):
    """Every error is {"error": {"status", "code", "message"}} with the HTTP status; nothing is written."""
    path, *rest = request_
    body = rest[0] if rest else None
    got, answer = call(server, path, body, **({"content_type": rest[1]} if len(rest) > 1 else {}))
    assert got == status
    assert set(answer) == {"error"} and answer["error"]["status"] == status and answer["error"]["code"] == code
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    assert not (tmp_path / "corrections.csv").exists()


def test_api_answers_only_its_own_host(server):
    """A request naming another host (DNS rebinding) is refused."""
    status, answer = call(server, "/api/state", host="evil.example")
    assert status == 403 and answer["error"]["code"] == "forbidden_host"


def test_review_refuses_a_taken_port(labelled, runner):
    """A port in use is a one-line error, exit 1."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(cli, ["review", str(labelled), "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ") and result.output.endswith("; choose another --port\n")


def test_the_page_fetches_nothing_from_the_network():
    """The page's files are package data and name no outside address (no CDN, no fonts, no analytics)."""
    from bpo_classify.review.app import STATIC, static_file

    for name in STATIC:
        text = static_file(name).decode("utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, flags=re.I), name
    assert '<script src="/static/app.js">' in static_file("index.html").decode("utf-8")


def test_ctrl_c_stops_the_page_and_says_where_the_decisions_are(labelled, tmp_path):
    """Ctrl-C (SIGINT) is the way to stop `review`: exit 0 and a line naming the corrections file."""
    import signal
    import subprocess
    import time

    from conftest import start_cli

    proc = start_cli("review", labelled, "--port", "0", "--corrections", tmp_path / "c.csv", cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        assert first.startswith("review page: http://127.0.0.1:"), first
        proc.stderr.readline()
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr.read() == f"review stopped: 0 of 3 flagged texts decided, saved in {tmp_path / 'c.csv'}\n"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
