"""Faults a careful tester tried (issue 21): each ends in a one-line error with the right exit
code, or in the right output, never a traceback and never a lost or replaced file."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpo_classify.cli import cli
from conftest import alive, children_of, distinct_duties, run_cli, run_measured, start_cli, wait_for_temp_output, wait_until, write_csv


def one_line_error(result, code: int) -> str:
    """The error text of a CliRunner result that must exit ``code`` with one line and no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert len(lines) <= 3, result.output  # click's usage errors add a usage line and a hint line
    return result.output


@pytest.fixture
def duties(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "duties.csv", [["duty"], ["process invoices"], ["answer customer calls"]])


@pytest.mark.parametrize("command", [["predict", "process invoices"], ["label", "IN"]])
def test_threshold_nan_is_a_usage_error(runner, duties, command):
    args = [str(duties) if a == "IN" else a for a in command]
    assert "'nan' is not a number between 0 and 1" in one_line_error(runner.invoke(cli, [*args, "--threshold", "nan"]), 2)


def test_jobs_out_of_range_is_a_usage_error_and_many_jobs_are_capped(runner, duties, tmp_path):
    one_line_error(runner.invoke(cli, ["label", str(duties), "--jobs", "99999999999999999999"]), 2)
    result = runner.invoke(cli, ["label", str(duties), "-o", str(tmp_path / "out.csv"), "--jobs", "5000"])
    assert result.exit_code == 0, result.output
    assert f"warning: --jobs 5000 is more than 4 per core; using {4 * (os.cpu_count() or 1)}" in result.output
    assert (tmp_path / "out.csv").read_text().count("\n") == 3


def test_negative_seed_is_a_usage_error(runner):
    one_line_error(runner.invoke(cli, ["train", "--seed", "-1", "--cv", "0", "--out", "never.bpoc"]), 2)
    assert not Path("never.bpoc").exists()


@pytest.mark.parametrize("codec", ["rot13", "hex", "base64"])
@pytest.mark.parametrize("command", ["label", "check-data"])
def test_codecs_that_are_not_text_encodings_are_refused(runner, duties, codec, command):
    output = one_line_error(runner.invoke(cli, [command, str(duties), "--encoding", codec]), 1)
    assert f"'{codec}' is not a text encoding" in output


def test_utf16_without_a_byte_order_mark_is_a_one_line_error(runner, tmp_path):
    path = tmp_path / "le.csv"
    path.write_bytes("duty\nprocess invoices\n".encode("utf-16-le"))
    output = one_line_error(runner.invoke(cli, ["label", str(path), "--encoding", "utf-16"]), 1)
    assert "cannot be read as utf-16" in output and "utf-16-le" in output


@pytest.mark.slow
@pytest.mark.parametrize("command", [["label", "-"], ["predict", "-"]])
def test_closed_stdin_is_a_one_line_error(tmp_path, command):
    done = run_cli(*command, cwd=tmp_path, text=True, stdin=None, preexec_fn=lambda: os.close(0))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == "Error: standard input is closed; pass a file name instead of -"


@pytest.mark.slow
def test_stdin_redirected_from_the_output_file_is_not_overwritten(tmp_path, duties):
    before = duties.read_bytes()
    with open(duties, "rb") as stdin:
        done = run_cli("label", "-", "-o", duties, cwd=tmp_path, stdin=stdin, text=True)
    assert done.returncode == 1 and "refusing to overwrite standard input" in done.stderr
    assert duties.read_bytes() == before


def test_an_output_name_near_the_length_limit_works(runner, duties, tmp_path):
    target = tmp_path / ("o" * 246 + ".csv")  # 250 characters: valid, but not with 14 more
    result = runner.invoke(cli, ["label", str(duties), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("duty,office")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_trailing_slash_names_a_directory(runner, duties, tmp_path):
    output = one_line_error(runner.invoke(cli, ["label", str(duties), "-o", str(tmp_path / "labelled") + "/"]), 2)
    assert "ends with a slash" in output
    assert not (tmp_path / "labelled").exists()


def test_a_replaced_output_keeps_its_mode(runner, duties, tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    target.chmod(0o600)
    assert runner.invoke(cli, ["label", str(duties), "-o", str(target)]).exit_code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text().startswith("duty,")


def test_model_card_checks_its_output_directory_before_the_work(runner, tmp_path):
    result = runner.invoke(cli, ["model-card", "-o", str(tmp_path / "missing" / "dir" / "card.md")])
    output = one_line_error(result, 1)
    assert "output directory does not exist" in output and "cross-validating" not in output


def test_a_missing_column_among_very_many_is_named_in_one_short_line(runner, tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join("x" * 100_000) + "\n")
    output = one_line_error(runner.invoke(cli, ["label", str(path), "--text-column", "duty"]), 1)
    assert len(output) < 1_000 and "... and 99,980 more" in output


# -- class 1: every write to stdout complete, or exit 1 -------------------------------------
def _limit_file_size(limit: int):
    """A child's ``preexec_fn``: files it writes may not grow past ``limit`` bytes (a full disk
    that any user can make: the write that crosses it is short, the next one fails with EFBIG)."""
    import resource

    def limit_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_size


@pytest.mark.slow
@pytest.mark.parametrize("unbuffered", ["1", ""])
@pytest.mark.parametrize("command", [["label", "SAMPLE"], ["predict", "--format", "csv", "-"]])
def test_a_short_write_to_stdout_is_retried_and_a_full_disk_fails(tmp_path, unbuffered, command):
    """stdout on a file that may hold only 4,096 bytes: never exit 0 with the output cut short."""
    sample = Path(__file__).resolve().parent.parent / "datasets" / "sample_job_duties.csv"
    args = [str(sample) if a == "SAMPLE" else a for a in command]
    texts = "".join(f"process invoices for vendor {i}\n" for i in range(300))
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    out = tmp_path / "out.csv"
    with open(out, "wb") as stdout:
        done = run_cli(*args, cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE, input=texts.encode(), env=env,
                       preexec_fn=_limit_file_size(4096))
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode() == "Error: cannot write to standard output: File too large\n"
    assert out.stat().st_size == 4096  # every byte up to the limit was written: the short write was retried


@pytest.mark.slow
@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_output_that_fits_is_complete_with_unbuffered_streams(tmp_path, unbuffered):
    """The retrying writer changes nothing when the disk has room: the same bytes either way."""
    sample = Path(__file__).resolve().parent.parent / "datasets" / "sample_job_duties.csv"
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    done = run_cli("label", sample, "-q", cwd=tmp_path, env=env)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.count(b"\n") == 51 and done.stdout.startswith(b"posting_id,role,")


def test_the_retrying_stream_never_closes_the_descriptor_it_shares(tmp_path):
    """Dropping the stream that makes writes complete leaves the old stream's file open and writable
    (wrapping the old raw file itself closed it with the new stream: pytest's own capture then died)."""
    import gc
    import io

    from bpo_classify.cli_support import completing_stream

    with open(tmp_path / "shared.txt", "wb", buffering=0) as raw:
        old = io.TextIOWrapper(raw, write_through=True)
        new = completing_stream(old)
        new.write("from the new stream\n")
        new.flush()
        del new
        gc.collect()
        old.write("then the old one\n")  # ValueError (I/O operation on closed file) if the file was closed
        old.flush()
        assert not raw.closed
        old.detach()
    assert (tmp_path / "shared.txt").read_text() == "from the new stream\nthen the old one\n"


# -- classes 3, 4, 5: signals and worker processes ------------------------------------------
@pytest.fixture
def labelling_with_workers(tmp_path: Path):
    """Start ``label in.csv -o out.csv --jobs 2`` in a child; return it and its workers once they
    run and rows are written. Whatever the test finds, every process started is killed at the end."""
    started: list[int] = []

    def start(**popen):
        source = distinct_duties(tmp_path / "in.csv", 400_000)
        proc = start_cli("label", source, "-o", "out.csv", "--jobs", "2", cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
        started.append(proc.pid)
        wait_for_temp_output(tmp_path, "out.csv", proc, written=True)
        assert wait_until(lambda: len(children_of(proc.pid)) >= 2, 30), "the workers did not start"
        started.extend(children_of(proc.pid))
        return proc, started[1:]

    yield start
    for pid in started:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def assert_clean(tmp_path: Path, workers: list[int]) -> None:
    """No output, no temporary file, and every worker gone."""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    assert wait_until(lambda: not any(map(alive, workers)), 10), "workers outlived their parent"


pytestmark_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytestmark_linux
@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.05, 0.3])
@pytest.mark.parametrize("signum, code, message", [
    (signal.SIGTERM, 143, "Terminated; no output was written."),
    (signal.SIGINT, 130, "Interrupted; no output was written."),
])
def test_a_second_signal_ends_a_parallel_run_at_once(tmp_path, labelling_with_workers, delay, signum, code, message):
    """Two SIGTERMs, or Ctrl-C twice (SIGINT to the whole process group), during `--jobs 2`:
    the run ends within seconds, with one message, no temporary file and no worker left."""
    proc, workers = labelling_with_workers(start_new_session=True)
    send = (lambda s: os.killpg(proc.pid, s)) if signum == signal.SIGINT else proc.send_signal
    send(signum)
    time.sleep(delay)
    if proc.poll() is None:
        send(signum)
    out, err = proc.communicate(timeout=15)
    assert (proc.returncode, out, err.decode()) == (code, b"", message + "\n")
    assert_clean(tmp_path, workers)


@pytestmark_linux
@pytest.mark.slow
@pytest.mark.parametrize("signum, message", [
    (signal.SIGHUP, "Terminated (SIGHUP); no output was written."),
    (signal.SIGQUIT, "Terminated (SIGQUIT); no output was written."),
])
def test_sighup_and_sigquit_are_handled_as_sigterm(tmp_path, labelling_with_workers, signum, message):
    """The terminal or ssh session closed, or Ctrl-\\: the same clean stop as `kill`, exit 128 + signal."""
    proc, workers = labelling_with_workers()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err.decode()) == (128 + signum, b"", message + "\n")
    assert_clean(tmp_path, workers)


@pytestmark_linux
@pytest.mark.slow
def test_workers_die_with_their_parent_and_its_temporary_file_is_removed_by_the_next_run(tmp_path, labelling_with_workers):
    """SIGKILL (the out-of-memory killer) on the main process: its workers end within seconds;
    the temporary file it could not remove is removed by the next run that writes that name."""
    proc, workers = labelling_with_workers()
    proc.kill()
    proc.communicate(timeout=15)
    assert wait_until(lambda: not any(map(alive, workers)), 10), "workers outlived their parent"
    stale = [p.name for p in tmp_path.glob(".out.csv.*.tmp")]
    assert stale and all(f".{proc.pid}." in name for name in stale)
    small = write_csv(tmp_path / "small.csv", [["duty"], ["process invoices"]])
    done = run_cli("label", small, "-o", "out.csv", "-q", cwd=tmp_path, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv", "small.csv"]


def test_a_stale_temporary_file_is_removed_only_when_its_writer_is_gone(runner, duties, tmp_path):
    """A temporary file of ours whose pid no longer runs is removed; a live process's is kept,
    and so is any other file that merely looks similar."""
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1 if Path("/proc/sys/kernel/pid_max").exists() else 2**22 + 1
    names = [f".out.csv.{dead}.0123abcd.tmp", f".out.csv.{os.getpid()}.0123abcd.tmp", f".out.csv.{dead}.notours.tmp", f".other.csv.{dead}.0123abcd.tmp"]
    for name in names:
        (tmp_path / name).write_text("half a file")
    result = runner.invoke(cli, ["label", str(duties), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob(".*.tmp")) == sorted(names[1:])


# -- class 7: crafted model files (a valid checksum, hostile content) -----------------------
def tiny_model_parts() -> tuple[dict, dict]:
    """The header and arrays of a small valid model: word 1-grams and the first 2 words, two functions."""
    import numpy as np

    words, heads = ["invoices", "process", "calls", "answer"], ["process", "answer"]
    features = len(words) + len(heads)
    office = np.array([[-1.0, -0.5, 1.0, 0.5, -0.5, 0.5]])
    header = {
        "format": "bpo-classify-model", "format_version": 3,
        "blocks": [{"analyzer": "word", "ngram_range": [1, 1], "n_terms": len(words)},
                   {"analyzer": "head", "ngram_range": [1, 1], "n_terms": len(heads), "head_words": 2}],
        "calibration": [1.5, 0.0], "function_classes": ["customer_service", "finance_accounting"],
        "metadata": {"review_threshold": 0.6, "review": {"familiar_share": 0.5, "not_a_task": 0.5}, "package_version": "0.1.0"},
    }
    arrays = {
        "office_coef": office, "office_intercept": np.zeros(1),
        "function_coef": np.vstack([office[0], -office[0]]), "function_intercept": np.zeros(2),
        "terms_0": np.frombuffer("\n".join(words).encode(), dtype=np.uint8), "idf_0": np.ones(len(words)),
        "terms_1": np.frombuffer("\n".join(heads).encode(), dtype=np.uint8), "idf_1": np.ones(len(heads)),
    }
    assert features == office.shape[1]
    return header, arrays


def npy(array) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def crafted(path: Path, header=None, arrays=None, *, header_text: str | None = None, members: dict | None = None) -> Path:
    """A model file with a valid checksum around whatever header and members it is given.

    ``members`` adds (or replaces) raw ``.npy`` members: name -> bytes."""
    import hashlib
    import io
    import json
    import struct
    import zipfile

    from bpo_classify.modelfile import MAGIC

    text = header_text if header_text is not None else json.dumps(header)
    payload = io.BytesIO()
    raw = {f"{name}.npy": npy(array) for name, array in (arrays or {}).items()}
    raw.update(members or {})
    with zipfile.ZipFile(payload, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in raw.items():
            archive.writestr(name, data)
    header_bytes = text.encode("utf-8")
    body = struct.pack("<Q", len(header_bytes)) + header_bytes + payload.getvalue()
    path.write_bytes(MAGIC + hashlib.sha256(body).digest() + body)
    return path


def refused(runner, path: Path) -> str:
    """``predict --model path`` must give one line "not a valid model file: ..." and exit 1."""
    output = one_line_error(runner.invoke(cli, ["predict", "process invoices", "--model", str(path)]), 1)
    assert output.startswith(f"Error: not a valid model file: {path}: "), output
    assert len(output.splitlines()) == 1
    return output


def test_the_tiny_crafted_model_is_valid(runner, tmp_path):
    """The base of the crafted cases loads and answers: each case below fails for its one change."""
    path = crafted(tmp_path / "ok.bpoc", *tiny_model_parts())
    result = runner.invoke(cli, ["predict", "--format", "csv", "process invoices", "answer calls"])
    assert result.exit_code == 0
    result = runner.invoke(cli, ["predict", "--format", "csv", "--model", str(path), "process invoices", "answer calls"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split(",")[1] == "back-office" and lines[2].split(",")[1] == "front-office"


def _header_change(header: dict, change: str) -> None:
    """Apply one crafted change (``key.path=value`` as JSON) to ``header``."""
    import json

    where, value = change.split("=", 1)
    keys = where.split(".")
    target = header
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = json.loads(value)
    else:
        target[last] = json.loads(value)


@pytest.mark.parametrize("change, reason", [
    ("metadata=\"a string\"", "metadata is a str, not a dict"),
    ("metadata.review_threshold=\"high\"", "metadata.review_threshold is 'high', not a number between 0 and 1"),
    ("metadata.review_threshold=NaN", "metadata.review_threshold is nan"),
    ("metadata.review=[1]", "metadata.review is a list"),
    ("metadata.training_data=\"x\"", "metadata.training_data is a str"),
    ("calibration=[NaN, 0]", "calibration[0] is nan"),
    ("calibration=[1e308, 0]", "calibration[0] is 1e+308"),
    ("calibration=\"high\"", "calibration is a str, not a list"),
    ("calibration=[1]", "calibration has 1 numbers, not 2"),
    ("blocks.0.ngram_range=[1, 1000000]", "blocks[0].ngram_range[1] is 1000000"),
    ("blocks.0.ngram_range=[1]", "blocks[0].ngram_range has 1 numbers, not 2"),
    ("blocks.0.n_terms=-1", "blocks[0].n_terms is -1"),
    ("blocks.0.n_terms=100000000000", "blocks[0].n_terms is 100000000000"),
    ("blocks.0.analyzer=\"regex\"", "blocks[0].analyzer is 'regex'"),
    ("blocks.1.head_words=1e9", "blocks[1].head_words is 1000000000.0"),
    ("blocks=[]", "0 feature blocks"),
    ("blocks=\"word\"", "blocks is a str, not a list"),
    ("function_classes=[\"payroll\", \"payroll\"]", "function_classes must be distinct"),
    ("function_classes=[\"astrology\", \"payroll\"]", "function_classes must be distinct function labels of the policy"),
    ("surprise={}", "unknown header entries: 'surprise'"),
    ("encoder={\"dim\": 10000000000}", "encoder.dim is 10000000000"),
    ("format_version=0", "format version 0"),
])
def test_a_crafted_header_is_refused_in_one_line(runner, tmp_path, change, reason):
    """Each header field of the wrong type, out of range or unknown: one line naming it, exit 1."""
    header, arrays = tiny_model_parts()
    _header_change(header, change)
    assert reason in refused(runner, crafted(tmp_path / "m.bpoc", header, arrays))


@pytest.mark.parametrize("header_text, reason", [
    ("[1, 2, 3]", "its header is a JSON list, not an object"),
    ("\"model\"", "its header is a JSON str, not an object"),
    ("{\"format\": \"bpo-classify-model\", \"format_version\": 3, \"metadata\": " + "[" * 200_000 + "]" * 200_000 + "}",
     "its header is nested too deeply"),
])
def test_a_header_that_is_not_an_object_is_refused(runner, tmp_path, header_text, reason):
    assert reason in refused(runner, crafted(tmp_path / "m.bpoc", header_text=header_text))


def test_a_header_declared_longer_than_the_file_is_refused(runner, tmp_path):
    import hashlib
    import struct

    from bpo_classify.modelfile import MAGIC

    body = struct.pack("<Q", 2**60) + b"{}"
    path = tmp_path / "m.bpoc"
    path.write_bytes(MAGIC + hashlib.sha256(body).digest() + body)
    assert "its header is declared 1,152,921,504,606,846,976 bytes" in refused(runner, path)


def _array_case(name: str):
    """The arrays of the tiny model with one crafted change, and the reason expected."""
    import numpy as np

    header, arrays = tiny_model_parts()
    members: dict[str, bytes] = {}
    if name == "short idf":
        arrays["idf_0"] = arrays["idf_0"][:-1]
        reason = "array idf_0 is float64 (3,); the header implies float64 (4,)"
    elif name == "NaN weight":
        arrays["office_coef"] = arrays["office_coef"].copy()
        arrays["office_coef"][0, 1] = np.nan
        reason = "array office_coef holds NaN, infinite or values beyond"
    elif name == "infinite idf":
        arrays["idf_1"] = np.array([1.0, np.inf])
        reason = "array idf_1 holds NaN, infinite"
    elif name == "overflowing weight":
        arrays["function_coef"] = arrays["function_coef"] * 1e300
        reason = "array function_coef holds NaN, infinite or values beyond 10000"
    elif name == "integer weights":
        arrays["office_intercept"] = np.zeros(1, dtype=np.int64)
        reason = "array office_intercept is int64 (1,)"
    elif name == "missing array":
        del arrays["function_intercept"]
        reason = "array function_intercept is missing"
    elif name == "745 GiB declared":
        del arrays["idf_0"]
        import io

        header_only = io.BytesIO()  # a .npy header declaring 745 GiB of float64, and no data
        np.lib.format.write_array_header_1_0(header_only, {"descr": "<f8", "fortran_order": False, "shape": (100_000_000_000,)})
        members["idf_0.npy"] = header_only.getvalue()
        reason = "array idf_0 is float64 (100000000000,); the header implies float64 (4,)"
    elif name == "inflating member":
        del arrays["idf_0"]
        members["idf_0.npy"] = npy(np.ones(4)) + bytes(50_000_000)  # 50 MB of zeros behind the array
        reason = "array idf_0 is declared 50,000,160 bytes; its header implies at most 32"
    elif name == "pickled object":
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        del arrays["office_intercept"]
        members["office_intercept.npy"] = buffer.getvalue()
        reason = "array office_intercept is object"
    elif name == "duplicate terms":
        arrays["terms_0"] = np.frombuffer(b"invoices\nprocess\ncalls\ncalls", dtype=np.uint8)
        reason = "block 0 lists a term twice"
    elif name == "too few terms":
        arrays["terms_0"] = np.frombuffer(b"invoices\nprocess", dtype=np.uint8)
        reason = "vocabulary does not match its header"
    elif name == "truncated data":
        del arrays["idf_0"]
        members["idf_0.npy"] = npy(np.ones(4))[:-8]
        reason = "array idf_0 is unreadable"
    else:
        raise AssertionError(name)
    return header, arrays, members, reason


@pytest.mark.parametrize("name", [
    "short idf", "NaN weight", "infinite idf", "overflowing weight", "integer weights", "missing array",
    "745 GiB declared", "inflating member", "pickled object", "duplicate terms", "too few terms", "truncated data",
])
def test_a_crafted_array_is_refused_before_it_is_allocated(runner, tmp_path, name):
    """Arrays that do not fit the header (shape, type, declared size, values): one line, exit 1."""
    header, arrays, members, reason = _array_case(name)
    assert reason in refused(runner, crafted(tmp_path / "m.bpoc", header, arrays, members=members))


def test_members_the_header_does_not_name_are_never_read(runner, tmp_path):
    """A file with extra members (a pickle, a 200 MB inflating one) loads and answers: they are not read."""
    import io

    import numpy as np

    header, arrays = tiny_model_parts()
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    path = crafted(tmp_path / "m.bpoc", header, arrays, members={"evil.npy": buffer.getvalue(), "bomb.npy": bytes(200_000_000)})
    assert path.stat().st_size < 1_000_000
    from bpo_classify.modelfile import read_model_file
    from bpo_classify.modelschema import expected_arrays

    _, read = read_model_file(path, expected_arrays)
    assert sorted(read) == sorted(arrays)
    result = runner.invoke(cli, ["predict", "process invoices", "--model", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/null"])
def test_a_model_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    """A named pipe (which would block) or a device (/dev/zero never ends): refused without reading."""
    path = Path(kind) if kind.startswith("/") else tmp_path / "model.bpoc"
    if kind == "fifo":
        os.mkfifo(path)
    done = run_cli("predict", "process invoices", "--model", path, cwd=tmp_path, timeout=60, text=True)
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"Error: not a valid model file: {path}: it is not a regular file (a pipe, socket or device) (corrupt or altered; rebuild it or fetch a fresh copy)\n"


# -- class 15: the Dask engine's errors for a bad .csv.gz are the local engine's ------------------
def _gzip_faults() -> dict[str, bytes]:
    import gzip

    rows = "role,duty\n" + "".join(f"Clerk,process invoices batch {i}\n" for i in range(20_000))
    whole = gzip.compress(rows.encode())
    flipped = bytearray(whole)
    for i in range(200, 260):
        flipped[i] ^= 0x55
    late = "role,duty\n" + "Clerk,process invoices\n" * 5000 + "Clerk,facturaci\xf3n\n"
    return {
        "truncated.csv.gz": whole[: len(whole) // 2],
        "corrupt.csv.gz": bytes(flipped),
        "not-gzip.csv.gz": rows[:200].encode(),
        "latin1-header.csv.gz": gzip.compress("role,duty\nClerk,caf\xe9\n".encode("latin-1")),
        "latin1-late.csv.gz": gzip.compress(late.encode("latin-1")),
        "latin1-late.csv": late.encode("latin-1"),
    }


@pytest.fixture(scope="module")
def dask_scheduler():
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_gzip_faults()))
def test_a_bad_compressed_or_encoded_file_reads_the_same_under_dask(runner, tmp_path, monkeypatch, dask_scheduler, name):
    """Truncated, corrupt or not gzip at all, bytes not in the encoding: under --engine dask the
    local engine's one line (the file named as given, the fault), exit 1, nothing written."""
    monkeypatch.chdir(tmp_path)
    Path(name).write_bytes(_gzip_faults()[name])
    local = one_line_error(runner.invoke(cli, ["label", name, "--text-column", "duty", "-o", "local.csv"]), 1)
    dask = one_line_error(runner.invoke(cli, ["label", name, "--text-column", "duty", "--engine", "dask",
                                              "--scheduler", dask_scheduler, "-o", "parts"]), 1)
    local_line, dask_line = local.splitlines()[-1], dask.strip().splitlines()[-1]
    assert "Aborted!" not in dask and name in dask_line, dask
    if "late" in name:
        # The local engine decodes a block ahead of parsing, so it names a row up to a block before
        # the byte; the Dask engine reads the whole file and names the row exactly.
        assert dask_line == f"Error: {name} is not valid utf-8 after data row 5000 (byte b'\\xf3'); try --encoding latin-1 or cp1252"
        assert re.sub(r"row \d+", "row N", local_line) == re.sub(r"row \d+", "row N", dask_line)
    else:
        assert dask_line == local_line
    assert sorted(os.listdir(tmp_path)) == [name]


# -- class 16: memory follows the cap on characters per text, and distinct training texts -------------
def test_a_text_longer_than_the_cap_is_cut_before_featurising_and_flagged(model, runner, monkeypatch):
    """Only the first MAX_TEXT_CHARS characters reach the scorer; the row is labelled and flagged `truncated`."""
    from bpo_classify import scoring
    from bpo_classify.model import MAX_TEXT_CHARS

    seen: list[int] = []
    original = scoring.LinearScorer.scores_and_familiar
    monkeypatch.setattr(scoring.LinearScorer, "scores_and_familiar",
                        lambda self, texts: seen.extend(map(len, texts)) or original(self, texts))
    long = "reconcile the vendor invoices and post them to the ledger " * 400  # 23,600 characters
    cols = model.predict_columns([long, "answer inbound customer calls", long[:MAX_TEXT_CHARS], ""])
    assert max(seen) == MAX_TEXT_CHARS
    assert cols.office[:3] == ["back-office", "front-office", "back-office"]
    assert cols.review_reason[0] == "truncated" and cols.needs_review[0]
    assert cols.review_reason[2] != "truncated" and cols.review_reason[3] == "empty"
    assert cols.office_confidence[0] == cols.office_confidence[2]  # labelled from its first MAX_TEXT_CHARS characters
    result = runner.invoke(cli, ["predict", "--format", "json", long])
    assert result.exit_code == 0 and '"review_reason": "truncated"' in result.output, result.output


def _peak_rss_mb(args: list[str], cwd: Path) -> float:
    """The peak resident memory of one successful `bpo-classify` run (-j 1 keeps the work in its process)."""
    code, err, peak = run_measured(*args, cwd=cwd)
    assert code == 0, err.decode()
    return peak


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB is Linux's")
def test_a_five_megabyte_field_is_labelled_in_bounded_memory(tmp_path):
    """A 5 MB field of ordinary words (uncut it took about 1.5 GB): labelled, flagged `truncated`,
    kept whole in the output, and the run's peak memory within 300 MB of a run without it."""
    import csv

    words = "process the invoices and answer the customer calls about their orders today ".split()
    field = " ".join(words[i % len(words)] for i in range(700_000))[: 5 * 2**20]
    write_csv(tmp_path / "small.csv", [["duty"], ["process invoices"], ["answer calls"]])
    write_csv(tmp_path / "big.csv", [["duty"], ["process invoices"], [field]])
    base = _peak_rss_mb(["label", "small.csv", "-j", "1", "-o", "small-out.csv"], tmp_path)
    peak = _peak_rss_mb(["label", "big.csv", "-j", "1", "-o", "big-out.csv"], tmp_path)
    assert peak - base < 300, (base, peak)
    with open(tmp_path / "big-out.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[1]["duty"] == field
    assert rows[1]["office"] in ("front-office", "back-office")
    assert rows[1]["needs_review"] == "true" and rows[1]["review_reason"] == "truncated"
    assert rows[0]["review_reason"] != "truncated"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB is Linux's")
def test_peak_memory_is_the_programs_not_pytests(tmp_path):
    """run_measured reports the program's own peak, however large the test process has grown
    (a child forked from pytest carries pytest's RSS in its ru_maxrss: the memory tests then
    failed late in a full run, with nothing wrong in the program)."""
    ballast = bytearray(700 * 2**20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])  # touch every page: resident in this process
    code, err, peak_mib = run_measured("--version", cwd=tmp_path)
    assert (code, err) == (0, b"")
    assert peak_mib < 300, f"peak memory {peak_mib:.0f} MiB"
    del ballast
