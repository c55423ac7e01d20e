"""Property-based tests of the model-file loader: a valid file with any one field or byte changed
(and its checksum made right again, as anyone can) loads and answers correctly, or is refused
with one line; never a traceback, never more than a bounded amount of memory.

The normal suite runs a few dozen mutations; `make fuzz` (HYPOTHESIS_PROFILE=fuzz) runs
thousands on a small model and a few hundred on the shipped one.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpo_classify.errors import ModelFileError
from bpo_classify.model import default_model_path, model_from_bytes
from bpo_classify.modelfile import MAGIC
from test_faults import npy, tiny_model_parts

pytestmark = pytest.mark.fuzz

FUZZ = settings.default.max_examples >= 1000  # HYPOTHESIS_PROFILE=fuzz (`make fuzz`)
#: Loading the shipped model takes about half a second: a few here, 300 under `make fuzz`.
SHIPPED_EXAMPLES = 300 if FUZZ else 5
#: What loading a mutated small model may allocate at most (the model itself needs kilobytes).
TINY_MEMORY = 64 * 2**20
#: The same for the shipped model (it needs about 100 MB while loading).
SHIPPED_MEMORY = 400 * 2**20
#: The first words of every refusal the loader gives.
REFUSALS = ("not a valid model file: ", "model file is corrupt", "not a bpo-classify model file", "model file made by a newer")
TEXTS = ["process invoices", "answer customer calls", "", "😀 \x00 ☃"]


def assemble(header_bytes: bytes, members: dict[str, bytes]) -> bytes:
    """A model file's bytes with a right checksum around ``header_bytes`` and ``members``."""
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return assemble_raw(header_bytes, payload.getvalue())


def assemble_raw(header_bytes: bytes, payload: bytes) -> bytes:
    body = struct.pack("<Q", len(header_bytes)) + header_bytes + payload
    return MAGIC + hashlib.sha256(body).digest() + body


def check_loads_or_refuses(data: bytes, memory: int) -> None:
    """The promise: a model that answers within bounds, or one line naming the file; bounded memory."""
    tracemalloc.start()
    try:
        try:
            model = model_from_bytes(data, "fuzzed.bpoc")
        except ModelFileError as exc:
            message = str(exc)
            assert message.startswith(REFUSALS) and "\n" not in message and len(message) < 2000, message
            return
        finally:
            peak = tracemalloc.get_traced_memory()[1]
        assert peak <= memory, f"loading allocated {peak:,} bytes"
        for p in model.predict(TEXTS):
            if p.office is None:
                assert p.needs_review
                continue
            assert 0.5 <= p.office_confidence <= 1.0 and math.isfinite(p.office_confidence)
            assert 0.0 <= p.function_confidence <= 1.0 and math.isfinite(p.function_confidence)
    finally:
        tracemalloc.stop()


# -- values a field may be given --------------------------------------------------------------
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0, 1, 2, 5, -1, 10**6, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["word", "char_wb", "head", "payroll", "customer_service", "bpo-classify-model"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def paths(node, prefix=()):
    """Every path to a value inside a JSON ``node``."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


@st.composite
def mutated_header(draw, header: dict) -> bytes:
    """``header`` with one value replaced, removed or added, as JSON bytes (NaN and all)."""
    header = copy.deepcopy(header)
    where = draw(st.sampled_from([p for p in paths(header) if p]))
    parent = header
    for key in where[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "remove":
        del parent[where[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(values)
    elif action == "add":
        parent.append(draw(values))
    else:
        parent[where[-1]] = draw(values)
    return json.dumps(header).encode("utf-8")


@st.composite
def mutated_array(draw, arrays: dict) -> dict[str, bytes]:
    """The ``.npy`` members of ``arrays`` with one of them changed: resized, retyped, a value
    replaced (NaN, inf, huge), or some of its bytes (header or data) overwritten."""
    members = {f"{name}.npy": npy(array) for name, array in arrays.items()}
    name = draw(st.sampled_from(sorted(arrays)))
    array = arrays[name]
    change = draw(st.sampled_from(["shorter", "longer", "dtype", "value", "bytes", "drop"]))
    if change == "drop":
        del members[f"{name}.npy"]
    elif change == "shorter":
        members[f"{name}.npy"] = npy(array.reshape(-1)[: draw(st.integers(0, max(array.size - 1, 0)))])
    elif change == "longer":
        members[f"{name}.npy"] = npy(np.concatenate([array.reshape(-1), np.zeros(draw(st.integers(1, 5)), array.dtype)]))
    elif change == "dtype":
        members[f"{name}.npy"] = npy(array.astype(draw(st.sampled_from(["<f4", ">f8", "<i8", "|u1", "<c16", "|b1"]))))
    elif change == "value":
        values = array.copy().reshape(-1)
        if values.size:  # a term byte (any byte, a newline, invalid UTF-8), or a weight (NaN, inf, huge)
            value = draw(st.integers(0, 255) if array.dtype.kind == "u" else st.floats(allow_nan=True, allow_infinity=True))
            values[draw(st.integers(0, values.size - 1))] = value
        members[f"{name}.npy"] = npy(values.reshape(array.shape))
    else:
        raw = bytearray(members[f"{name}.npy"])
        for _ in range(draw(st.integers(1, 4))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        members[f"{name}.npy"] = bytes(raw)
    return members


TINY_HEADER, TINY_ARRAYS = tiny_model_parts()
TINY_HEADER_BYTES = json.dumps(TINY_HEADER).encode("utf-8")
TINY_MEMBERS = {f"{name}.npy": npy(array) for name, array in TINY_ARRAYS.items()}


def test_the_unmutated_small_model_loads():
    """The base of the mutations is valid: a property that refuses everything would prove nothing."""
    model = model_from_bytes(assemble(TINY_HEADER_BYTES, TINY_MEMBERS))
    assert [p.office for p in model.predict(["process invoices", "answer calls"])] == ["back-office", "front-office"]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(header=mutated_header(TINY_HEADER))
def test_a_small_model_with_a_mutated_header_loads_or_is_refused(header):
    check_loads_or_refuses(assemble(header, TINY_MEMBERS), TINY_MEMORY)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(members=mutated_array(TINY_ARRAYS))
def test_a_small_model_with_a_mutated_array_loads_or_is_refused(members):
    check_loads_or_refuses(assemble(TINY_HEADER_BYTES, members), TINY_MEMORY)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_small_model_with_mutated_payload_bytes_loads_or_is_refused(data):
    """Bytes of the zip archive itself overwritten (sizes, offsets, compressed streams)."""
    payload = bytearray(assemble(TINY_HEADER_BYTES, TINY_MEMBERS)[len(MAGIC) + 32 + 8 + len(TINY_HEADER_BYTES):])
    for _ in range(data.draw(st.integers(1, 8))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    check_loads_or_refuses(assemble_raw(TINY_HEADER_BYTES, bytes(payload)), TINY_MEMORY)


def _shipped() -> tuple[dict, bytes]:
    data = default_model_path().read_bytes()
    (length,) = struct.unpack_from("<Q", data, len(MAGIC) + 32)
    start = len(MAGIC) + 32 + 8
    return json.loads(data[start : start + length]), data[start + length :]


SHIPPED_HEADER, SHIPPED_PAYLOAD = _shipped()


@settings(max_examples=SHIPPED_EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(header=mutated_header(SHIPPED_HEADER))
def test_the_shipped_model_with_a_mutated_header_loads_or_is_refused(header):
    check_loads_or_refuses(assemble_raw(header, SHIPPED_PAYLOAD), SHIPPED_MEMORY)
