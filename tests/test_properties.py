"""Property-based tests: whatever text arrives, predict and label answer once per input, within bounds, the same way every time.

The normal suite runs each property on a few dozen generated examples; `make fuzz`
(HYPOTHESIS_PROFILE=fuzz) runs 10,000 per property. Texts mix arbitrary Unicode with
the hostile cases named in the reliability section of the README: NUL, lone
surrogates (Python API only: they cannot be encoded as UTF-8, so they cannot reach a
file or an argument), right-to-left marks and overrides, emoji and ZWJ sequences,
combining marks, every kind of line break and white space, CSV delimiters and quotes,
whitespace-only strings and 1 MB strings.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bpo_classify.cli import cli
from bpo_classify.labeling import ADDED_COLUMNS
from bpo_classify.model import MAX_TEXT_CHARS, REVIEW_REASONS, load_model
from bpo_classify.policy import FRONT, FUNCTION_OFFICE, OFFICES

pytestmark = pytest.mark.fuzz

#: The shipped model, loaded once. Not the `model` fixture: Hypothesis prints a test's
#: arguments when it fails, and a model's repr runs to tens of kilobytes.
model = load_model()
#: The same model after it has answered one large batch: large batches may switch a model
#: to a different (word-remembering) scoring path, which must keep the same promises.
warmed = load_model()
warmed.predict(["process invoices and answer live chat inquiries"] * 1000)
MODELS = {"fresh": load_model(), "after-large-batch": warmed}
#: Probabilities may differ in the last bits between scoring paths; labels never.
TOLERANCE = 1e-12

#: Characters that break naive text handling.
HOSTILE = [
    "\x00", "\x01", "\x1b[2J",  # NUL, control, a terminal escape sequence
    "\u200e", "\u200f", "\u202e", "\u2066", "\u2069", "\u061c",  # LRM, RLM, RLO, isolates, ALM
    "\ufeff", "\u200b", "\u200d", "\u00ad",  # BOM, zero-width space and joiner, soft hyphen
    "😀", "👩\u200d💻", "🇫🇷", "\U0001f3fd", "\U0010ffff", "\ufffd", "\ufdfd",  # emoji, ZWJ, flag, modifier
    "e\u0301", "İ", "ß", "ﬃ", "Σ",  # combining mark, case mappings that change length
    "请求书", "معالجة", "Проверка", "שלום",  # other scripts, RTL text
    '"', "'", ",", ";", "|", "\\", "\t",  # CSV delimiters and quotes
]
#: White space of every kind, including the line breaks str.splitlines knows.
WHITESPACE = [" ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
              "\u1680", "\u2000", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
#: Lone surrogates: valid in a Python str, impossible in UTF-8.
SURROGATES = ["\ud800", "\udfff", "\udcff", "\ud83d"]
#: Words the model knows, so generated texts also reach confident answers.
WORDS = ["process", "invoices", "answer", "live", "chat", "inquiries", "payroll", "reconcile", "bank",
         "customer", "refund", "call", "outbound", "sales", "ledger", "tickets", "password", "reset",
         "claims", "onboarding", "recruit", "vendor", "collections", "KYC", "AP", "CRM"]


def texts(*, surrogates: bool) -> st.SearchStrategy[str]:
    """Arbitrary Unicode, known words mixed with hostile characters, and whitespace-only strings."""
    chars = st.characters(codec=None if surrogates else "utf-8")
    special = HOSTILE + WHITESPACE + (SURROGATES if surrogates else [])
    piece = st.one_of(st.sampled_from(WORDS), st.sampled_from(special), st.text(chars, max_size=6), st.just(" "))
    return st.one_of(
        st.text(chars, max_size=200),
        st.lists(piece, max_size=40).map("".join),
        st.lists(st.sampled_from(WHITESPACE), max_size=8).map("".join),
    )


def one_megabyte(seed: str) -> str:
    """A string of exactly 1,000,000 characters, made by repeating ``seed``.

    Built inside the test from a small generated seed, so Hypothesis never has to
    print (or store) a megabyte.
    """
    return (seed * (1_000_000 // len(seed) + 1))[:1_000_000]


FUZZ = settings.default.max_examples >= 1000  # HYPOTHESIS_PROFILE=fuzz (`make fuzz`)
#: 1 MB texts take a second or two each; run one, and ten under `make fuzz`.
HUGE_EXAMPLES = 10 if FUZZ else 1
#: Labelling a file three times per example is slow; `make fuzz` runs 2,000 of those.
LABEL_EXAMPLES = 2000 if FUZZ else settings.default.max_examples


def check_predictions(model, batch, predictions) -> None:
    """The promises of Model.predict for one batch (see the README's Reliability section)."""
    assert len(predictions) == len(batch)
    present = [t[:MAX_TEXT_CHARS] for t in batch if t.strip()]  # what the model reads of each text
    front = model.front_office_proba(present) if present else np.zeros(0)
    fproba = model.function_proba(present) if present else np.zeros((0, len(model.function_classes)))
    assert np.all((front >= 0) & (front <= 1))
    assert np.all((fproba >= 0) & (fproba <= 1))
    assert np.allclose(fproba.sum(axis=1), 1.0, rtol=0, atol=1e-9)
    j = 0
    for text, p in zip(batch, predictions):
        assert p.text == text
        if not text.strip():
            assert (p.office, p.office_confidence, p.function, p.function_confidence, p.needs_review) == (
                None, None, None, None, True)
            continue
        # The office shown is the likelier of front/back, whose probabilities sum to 1.
        assert p.office in OFFICES
        assert abs(p.office_confidence - (front[j] if p.office == FRONT else 1.0 - front[j])) <= TOLERANCE
        assert 0.5 <= p.office_confidence <= 1.0
        # The function is one of the office shown, with a joint probability no larger.
        assert FUNCTION_OFFICE[p.function] == p.office
        assert 0.0 <= p.function_confidence <= p.office_confidence
        # Flagged exactly when there is a reason: a text cut at MAX_TEXT_CHARS first, then unfamiliar
        # words, then not-a-task lines, then the office probability under the threshold.
        assert p.needs_review == (p.review_reason is not None) and p.review_reason in (None, *REVIEW_REASONS)
        assert (p.review_reason == "truncated") == (len(text) > MAX_TEXT_CHARS)
        if len(text) > MAX_TEXT_CHARS:
            j += 1
            continue
        settings = model.review_settings
        unfamiliar = model.familiar_share([text])[0] < settings["familiar_share"]
        not_a_task = model.not_a_task_coef is not None and model.not_a_task_proba([text])[0] >= settings["not_a_task"]
        assert (p.review_reason == "unfamiliar_text") == unfamiliar
        if not unfamiliar:
            assert (p.review_reason == "not_a_task") == not_a_task
        if not unfamiliar and not not_a_task:
            assert (p.review_reason in ("mixed_task", "low_confidence")) == (p.office_confidence < model.threshold)
        j += 1


def same_answers(a: list[dict], b: list[dict]) -> bool:
    """Equal labels and texts; probabilities equal to within TOLERANCE."""
    def close(x, y):
        return x == y or (x is not None and y is not None and abs(x - y) <= TOLERANCE)

    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(close(x[k], y[k]) if k.endswith("confidence") else x[k] == y[k] for k in x)
        for x, y in zip(a, b)
    )


def as_dicts(predictions) -> list[dict]:
    return [p.as_dict() for p in predictions]


@pytest.mark.parametrize("name", MODELS)
@given(batch=st.lists(texts(surrogates=True), max_size=8))
@example(batch=["\x00", "\ud800", "\u200f\u202e", "😀" * 5, "   \t\n", "", "process invoices\x00\ud83d"])
def test_predict_api_properties(name, batch):
    """Model.predict never raises on a str, answers once per text within bounds, and is deterministic and batch-independent."""
    m = MODELS[name]
    predictions = m.predict(batch)
    check_predictions(m, batch, predictions)
    assert same_answers(as_dicts(m.predict(batch)), as_dicts(predictions))
    assert same_answers(as_dicts(m.predict([t])[0] for t in batch), as_dicts(predictions))
    assert same_answers(as_dicts(MODELS["fresh"].predict(batch)), as_dicts(predictions))  # whatever the path


@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=HUGE_EXAMPLES)
@given(seed=texts(surrogates=True).filter(bool))
def test_predict_api_one_megabyte_texts(name, seed):
    """A 1 MB text gets one answer within bounds, like any other."""
    text = one_megabyte(seed)
    check_predictions(MODELS[name], [text], MODELS[name].predict([text]))


def test_predict_rejects_a_bare_string_and_non_strings():
    """A str passed as the batch would be answered once per character; it is a TypeError instead, as is a non-str item."""
    with pytest.raises(TypeError, match="not a single str; wrap it in a list"):
        model.predict("process invoices")
    with pytest.raises(TypeError, match=r"texts\[1\] has type int"):
        model.predict(["process invoices", 3])
    assert [p.office for p in model.predict([None, float("nan")])] == [None, None]


@contextlib.contextmanager
def shipped_model(model):
    """Let CLI invocations reuse the loaded model instead of reading the file for every example."""
    with mock.patch("bpo_classify.cli._load", return_value=model):
        yield


#: Stateless, so one runner serves every generated example (a function-scoped fixture would not be reset).
RUNNER = CliRunner()


def cli_ok(args, **kwargs):
    result = RUNNER.invoke(cli, args, catch_exceptions=False, **kwargs)
    assert result.exit_code == 0, result.output
    return result


@given(batch=st.lists(texts(surrogates=False).filter(lambda t: t != "-"), min_size=1, max_size=6))
def test_predict_cli_arguments(batch):
    """`bpo-classify predict -- TEXT...` answers once per argument, exactly as Model.predict does, every time."""
    with shipped_model(model):
        first = cli_ok(["predict", "--format", "json", "--", *batch])
        again = cli_ok(["predict", "--format", "json", "--", *batch])
    assert same_answers(json.loads(first.stdout), json.loads(again.stdout))
    assert same_answers(json.loads(first.stdout), as_dicts(model.predict(batch)))


@given(lines=st.lists(texts(surrogates=False).map(lambda t: t.replace("\r", " ").replace("\n", " ")), min_size=1, max_size=6),
       ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_predict_cli_stdin_lines(lines, ending):
    """`predict -` answers once per line (\\n, \\r\\n or \\r); other Unicode separators stay inside the text."""
    data = ending.join(lines) + ending
    with shipped_model(model):
        result = cli_ok(["predict", "-", "--format", "json"], input=data.encode("utf-8"))
    answers = json.loads(result.stdout)
    assert [a["text"] for a in answers] == [line.removeprefix("\ufeff") if i == 0 else line for i, line in enumerate(lines)]
    assert same_answers(answers, as_dicts(model.predict([a["text"] for a in answers])))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


cells = texts(surrogates=False)


@settings(max_examples=LABEL_EXAMPLES)
@given(rows=st.lists(st.tuples(cells, cells, cells).map(list), max_size=12),
       delimiter=st.sampled_from([",", "\t", ";", "|"]))
@example(rows=[["1", "caf\x00e\r\nline", '"quoted"'], ["", "", ""], ["2", "\u202eevil", "\r"]], delimiter=",")
def test_label_cli_round_trip(rows, delimiter):
    """`label` keeps every row and cell byte for byte, adds valid labels, writes the same bytes to a file and to stdout, every time."""
    header = ["id", "duty", "note"]
    with tempfile.TemporaryDirectory() as tmp, shipped_model(model):
        source = Path(tmp) / "in.csv"
        with open(source, "w", encoding="utf-8", newline="") as f:
            csv.writer(f, delimiter=delimiter).writerows([header, *rows])
        before = _sha(source)
        # The output's name decides its format (.csv commas, .tsv tabs); a name that says nothing keeps the input's.
        out = Path(tmp) / {",": "out.csv", "\t": "out.tsv"}.get(delimiter, "out.txt")
        cli_ok(["label", str(source), "-o", str(out), "--text-column", "duty"])
        written = out.read_bytes()
        to_stdout = cli_ok(["label", str(source), "--text-column", "duty"])
        cli_ok(["label", str(source), "-o", str(out), "--text-column", "duty"])
        assert out.read_bytes() == written == to_stdout.stdout_bytes
        assert _sha(source) == before
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["in.csv", out.name]
        with open(out, encoding="utf-8", newline="") as f:
            got = list(csv.reader(f, delimiter=delimiter, strict=True))
    assert got[0] == header + list(ADDED_COLUMNS)
    assert [r[:3] for r in got[1:]] == rows
    expected = model.predict([r[1] for r in rows])
    for row, p in zip(got[1:], expected):
        office, oc, function, fc, review, reason = row[3:]
        if p.office is None:
            assert row[3:] == ["", "", "", "", "true", "empty"]
            continue
        assert (office, function, review, reason) == (p.office, p.function, str(p.needs_review).lower(), p.review_reason or "")
        assert oc == f"{p.office_confidence:.4f}" and fc == f"{p.function_confidence:.4f}"
        assert 0.5 <= float(oc) <= 1 and 0 <= float(fc) <= float(oc)


@settings(max_examples=5 if FUZZ else 1)
@given(seed=texts(surrogates=False).filter(bool))
def test_label_one_megabyte_cell(seed):
    """A 1 MB cell goes through `label` unchanged and gets one row of labels."""
    text = one_megabyte(seed)
    with tempfile.TemporaryDirectory() as tmp, shipped_model(model):
        source = Path(tmp) / "in.csv"
        with open(source, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows([["duty", "n"], [text, "1"]])
        result = cli_ok(["label", str(source)])
    # stdout_bytes, not stdout: click's Result.stdout turns \r\n into \n.
    got = list(csv.reader(io.StringIO(result.stdout_bytes.decode("utf-8"), newline=""), strict=True))
    assert len(got) == 2 and got[1][:2] == [text, "1"]
    if text.strip():
        assert got[1][2] in OFFICES and 0.5 <= float(got[1][3]) <= 1
    else:
        assert got[1][2:] == ["", "", "", "", "true"]
