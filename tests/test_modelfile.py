"""Model files: never executed, checked for corruption and format version, saved atomically."""

from __future__ import annotations

import json
import os
import pickle
import struct

import pytest

from bpo_classify.cli import cli
from bpo_classify.errors import ModelFileError
from bpo_classify.model import default_model_path, load_model, save_model
from bpo_classify.modelfile import MAGIC, read_model_file, write_model_file


class _Exploit:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path, runner):
    """A pickle crafted to run a command is refused with one line; the command does not run."""
    marker = tmp_path / "pwned"
    for name, payload in {
        "evil.bpoc": pickle.dumps(_Exploit(marker)),
        "evil.joblib": pickle.dumps(_Exploit(marker), protocol=2),
    }.items():
        path = tmp_path / name
        path.write_bytes(payload)
        result = runner.invoke(cli, ["predict", "process invoices", "--model", str(path)])
        assert result.exit_code == 1
        assert "not a bpo-classify model file" in result.output
    # The same payload smuggled inside our container, as an object array, is refused too.
    import io
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    path = tmp_path / "inside.bpoc"
    arrays = {"office_coef": np.zeros((1, 0))}
    write_model_file(path, {"blocks": [], "calibration": [1, 0], "function_classes": [], "metadata": {}}, arrays)
    raw = bytearray(path.read_bytes())
    assert not marker.exists()
    # Replace the payload with an npz whose array is a pickled object, re-checksummed so it passes the digest.
    import hashlib
    import zipfile

    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("office_coef.npy", buf.getvalue())
    (hlen,) = struct.unpack_from("<Q", raw, len(MAGIC) + 32)
    body = bytes(raw[len(MAGIC) + 32 : len(MAGIC) + 32 + 8 + hlen]) + npz.getvalue()
    path.write_bytes(MAGIC + hashlib.sha256(body).digest() + body)
    with pytest.raises(ModelFileError, match="corrupt"):
        read_model_file(path)
    assert not marker.exists()


def test_truncated_and_bit_flipped_files_are_corrupt(tmp_path):
    """Cutting the file short or flipping one bit anywhere says 'model file is corrupt'."""
    data = default_model_path().read_bytes()
    truncated = tmp_path / "t.bpoc"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="model file is corrupt"):
        load_model(truncated)
    for position in (3, len(MAGIC) + 5, len(MAGIC) + 40, len(data) // 2, len(data) - 1):
        flipped = bytearray(data)
        flipped[position] ^= 0x10
        path = tmp_path / f"f{position}.bpoc"
        path.write_bytes(bytes(flipped))
        with pytest.raises(ModelFileError, match="model file is corrupt"):
            load_model(path)


def _set_format_version(path, version):
    """Rewrite a model file's header with another format version (and a valid checksum)."""
    import hashlib

    raw = path.read_bytes()
    (hlen,) = struct.unpack_from("<Q", raw, len(MAGIC) + 32)
    start = len(MAGIC) + 32 + 8
    header = json.loads(raw[start : start + hlen])
    header["format_version"] = version
    new_header = json.dumps(header).encode()
    body = struct.pack("<Q", len(new_header)) + new_header + raw[start + hlen :]
    path.write_bytes(MAGIC + hashlib.sha256(body).digest() + body)


@pytest.mark.slow
def test_format_1_file_without_detector_still_loads(tmp_path, small_corpus):
    """A model file from before the mixed-task detector (format 1) loads and predicts as it did."""
    from bpo_classify.training import train

    model = train(small_corpus, seed=0, cv=0).model
    path = tmp_path / "old.bpoc"
    save_model(model, path)
    _set_format_version(path, 1)
    old = load_model(path)
    assert old.mixed_coef is None
    texts = ["process invoices", "handle customer refunds"]
    assert old.front_office_proba(texts).tolist() == model.front_office_proba(texts).tolist()


@pytest.mark.slow
def test_detector_that_does_not_fit_the_vocabulary_is_corrupt(tmp_path, small_training):
    """Detector weights of the wrong width are refused as corrupt, not used."""
    header, arrays = read_model_file(_saved(small_training.model, tmp_path))
    arrays["mixed_coef"] = arrays["mixed_coef"][:, :-1]
    path = tmp_path / "bad.bpoc"
    write_model_file(path, {k: v for k, v in header.items() if not k.startswith("format")}, arrays)
    with pytest.raises(ModelFileError, match="mixed-task detector does not match"):
        load_model(path)


def _saved(model, tmp_path):
    path = tmp_path / "good.bpoc"
    save_model(model, path)
    return path


def test_newer_format_asks_to_upgrade(tmp_path, runner):
    """A file from a newer format version names the version that made it and says to upgrade."""
    path = tmp_path / "new.bpoc"
    write_model_file(path, {"metadata": {"package_version": "9.1"}}, {})
    _set_format_version(path, 99)
    result = runner.invoke(cli, ["info", "--model", str(path)])
    assert result.exit_code == 1
    assert "made by a newer bpo-classify 9.1" in result.output and "upgrade" in result.output


def test_foreign_files(tmp_path, runner):
    """An empty file, a text file and a directory each get a one-line error."""
    empty = tmp_path / "empty.bpoc"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("hello", encoding="utf-8")
    for path, message in ((empty, "not a bpo-classify model file"), (text, "not a bpo-classify model file"), (tmp_path, "is a directory")):
        result = runner.invoke(cli, ["predict", "x", "--model", str(path)])
        assert result.exit_code == 1 and message in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_save_roundtrip_and_atomic(tmp_path, model, monkeypatch):
    """A saved model loads back with identical predictions; a save interrupted after its bytes are written
    (before they are in place) leaves the old file intact and no temporary file."""
    path = tmp_path / "m.bpoc"
    save_model(model, path)
    again = load_model(path)
    texts = ["process invoices", "greet hotel guests", "KYC refresh"]
    assert [p.as_dict() for p in again.predict(texts)] == [p.as_dict() for p in model.predict(texts)]
    path.write_bytes(b"yesterday's model")
    written = []

    def interrupted(fd):
        written.append(os.fstat(fd).st_size)
        raise KeyboardInterrupt  # as if Ctrl-C arrived once the new bytes were written

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, path)
    assert written and written[0] > 1_000_000  # the whole new model had been written somewhere
    assert path.read_bytes() == b"yesterday's model"
    assert [p.name for p in tmp_path.iterdir()] == ["m.bpoc"]
