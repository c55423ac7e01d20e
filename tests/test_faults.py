"""Faults a careful tester tried (issue 21): each ends in a one-line error with the right exit
code, or in the right output, never a traceback and never a lost or replaced file."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpo_classify.cli import cli
from conftest import write_csv


def one_line_error(result, code: int) -> str:
    """The error text of a CliRunner result that must exit ``code`` with one line and no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert len(lines) <= 3, result.output  # click's usage errors add a usage line and a hint line
    return result.output


def run(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bpo_classify", *args], cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs)


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
    done = run(*command, cwd=tmp_path, stdin=None, preexec_fn=lambda: os.close(0))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == "Error: standard input is closed; pass a file name instead of -"


@pytest.mark.slow
def test_stdin_redirected_from_the_output_file_is_not_overwritten(tmp_path, duties):
    before = duties.read_bytes()
    with open(duties, "rb") as stdin:
        done = run("label", "-", "-o", str(duties), cwd=tmp_path, stdin=stdin)
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
        done = subprocess.run([sys.executable, "-m", "bpo_classify", *args], cwd=tmp_path, stdout=stdout, stderr=subprocess.PIPE,
                              input=texts.encode(), env=env, preexec_fn=_limit_file_size(4096), timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.decode() == "Error: cannot write to standard output: File too large\n"
    assert out.stat().st_size == 4096  # every byte up to the limit was written: the short write was retried


@pytest.mark.slow
@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_output_that_fits_is_complete_with_unbuffered_streams(tmp_path, unbuffered):
    """The retrying writer changes nothing when the disk has room: the same bytes either way."""
    sample = Path(__file__).resolve().parent.parent / "datasets" / "sample_job_duties.csv"
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    done = subprocess.run([sys.executable, "-m", "bpo_classify", "label", str(sample), "-q"], cwd=tmp_path,
                          capture_output=True, env=env, timeout=120)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.count(b"\n") == 51 and done.stdout.startswith(b"posting_id,role,")


# -- classes 3, 4, 5: signals and worker processes ------------------------------------------
def distinct_duties(path: Path, n: int) -> Path:
    """A CSV of ``n`` distinct duties (no label can be remembered: the workers do real work)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id,duty\n")
        f.writelines(f"{i},process invoices and reconcile vendor statements {i}\n" for i in range(n))
    return path


def children_of(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def labelling_with_workers(tmp_path: Path):
    """Start ``label in.csv -o out.csv --jobs 2`` in a child; return it and its workers once they
    run and rows are written. Whatever the test finds, every process started is killed at the end."""
    from conftest import start_cli, wait_for_temp_output

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
    done = run("label", str(small), "-o", "out.csv", "-q", cwd=tmp_path)
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
