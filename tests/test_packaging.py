"""The built wheel carries the default model and the corpus, so `pip install .` works with no training step."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

# Builds a wheel with pip (`make test-fast` leaves it out).
pytestmark = pytest.mark.slow


def test_wheel_ships_model_and_corpus(tmp_path):
    """A non-editable build includes the model file, the bundled data sets and the review page inside the package."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    # The data files are package data of a listed package: setuptools has nothing to warn about.
    assert "bpo_classify.data" not in done.stderr, done.stderr
    (wheel,) = tmp_path.glob("bpo_classify-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("default_model.bpoc", "bpo_tasks.csv", "ambiguous_tasks.csv", "not_tasks.csv"):
        assert f"bpo_classify/data/{name}" in names
    for name in ("app.py", "static/index.html", "static/app.js", "static/app.css"):  # the review page, read with importlib.resources
        assert f"bpo_classify/review/{name}" in names
    assert not any(n.startswith(("tests/", "datasets/", "benchmarks/", "docs/")) for n in names)
    packaged = zipfile.ZipFile(wheel).read("bpo_classify/data/bpo_tasks.csv")
    assert packaged == (ROOT / "datasets" / "bpo_tasks.csv").read_bytes()
