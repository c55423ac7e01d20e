"""Shared fixtures: the shipped model, a small seeded training run, a CLI runner."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

# Property-based tests (tests/test_properties.py, marker `fuzz`): a quick run in the normal
# suite; `make fuzz` sets HYPOTHESIS_PROFILE=fuzz: 10,000 examples per predict property.
settings.register_profile("quick", max_examples=60, deadline=None, print_blob=True)
settings.register_profile("fuzz", max_examples=10_000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

from bpo_classify.corpus import LabelledData, load_labelled
from bpo_classify.model import Model, load_model

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL = ROOT.parent / "shared" / "external" / "onet_dev.tsv"

#: Job duties as exports hold them: quotes, commas, a line break, blank cells.
DUTIES = [
    "Process vendor invoices and match them to purchase orders",
    "Answer inbound customer calls about billing questions",
    "Reconcile bank statements, and post journal entries",
    "Troubleshoot VPN connection issues for customers over chat",
    'Update the "master data" records in SAP',
    "Run payroll for hourly employees\nand check overtime",
    "",
    "   ",
    "Call prospects to book product demos",
    "Moderate user comments on the brand's social pages",
]
#: Strings that break naive text handling.
ODD = ["", "a", "  spaced   out  ", "ÜBER große Straße", "AP/AR recon", "x" * 300, "emoji 😊 text", "tab\tand\nnewline", "1099 forms"]

# The golden files' writer: run only by `make goldens`, never imported at collection.
collect_ignore = ["golden/regenerate.py"]


def _tree_state() -> tuple[str, str] | None:
    """What `git status` and `git diff` say about the checkout (None outside a git checkout)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    try:
        git("rev-parse", "--show-toplevel")
    except (OSError, subprocess.CalledProcessError):
        return None
    return git("status", "--porcelain", "--untracked-files=all"), git("diff", "HEAD", "--binary")


@pytest.fixture(scope="session", autouse=True)
def tree_left_as_found():
    """The test run leaves the checkout as it found it: no golden file rewritten, no file left behind.

    Checked when the session ends; a difference is an error of the last test, so `make test` fails.
    """
    before = _tree_state()
    yield
    after = _tree_state()
    if before is not None and after != before:
        changed = sorted(set(after[0].splitlines()) ^ set(before[0].splitlines())) or ["(contents of already-changed files)"]
        pytest.fail("the test run changed the checkout: " + "; ".join(changed[:10]), pytrace=False)


@pytest.fixture(scope="session")
def model() -> Model:
    """The default model shipped inside the package."""
    return load_model()


@pytest.fixture(scope="session")
def corpus() -> LabelledData:
    return load_labelled()


@pytest.fixture(scope="session")
def small_corpus(corpus: LabelledData) -> LabelledData:
    """A seeded, stratified 25-rows-per-function slice of the corpus: trains in a second or two."""
    rng = random.Random(0)
    picked: list[int] = []
    for function in sorted(set(corpus.functions)):
        idx = [i for i, f in enumerate(corpus.functions) if f == function]
        picked += rng.sample(idx, 25)
    picked.sort()
    return LabelledData(
        [corpus.texts[i] for i in picked], [corpus.offices[i] for i in picked],
        [corpus.functions[i] for i in picked], [corpus.rows[i] for i in picked], "small", "",
    )


@pytest.fixture(scope="session")
def small_csv(small_corpus: LabelledData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small corpus written as a CSV with non-default column names."""
    path = tmp_path_factory.mktemp("data") / "labels.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["duty", "side", "tower"])
        w.writerows(zip(small_corpus.texts, small_corpus.offices, small_corpus.functions))
    return path


@pytest.fixture(scope="session")
def small_mixed() -> list[str]:
    """The first 60 bundled mixed tasks: enough to train a mixed-task detector."""
    from bpo_classify.corpus import load_ambiguous

    return load_ambiguous()[:60]


@pytest.fixture(scope="session")
def small_training(small_corpus: LabelledData, small_mixed: list[str]):
    """A model (with a mixed-task detector) trained on the small corpus, with its scikit-learn reference pipeline."""
    from bpo_classify.training import train

    return train(small_corpus, seed=0, cv=0, ambiguous=small_mixed)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _default_sigint() -> None:
    # A test run started in the background (`make test &`, nohup, some CI runners) passes
    # SIGINT on as *ignored*, and Python then never raises KeyboardInterrupt: a child that
    # must react to Ctrl-C needs the default disposition back, as in an interactive shell.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(*args: object, cwd: Path, **kwargs) -> subprocess.Popen:
    """The real program in a child process, as an interactive shell would start it.

    >>> proc = start_cli("--version", cwd=Path("."), stdout=subprocess.PIPE)
    >>> proc.communicate()[0].startswith(b"bpo-classify, version ")
    True
    """
    command = [sys.executable, "-m", "bpo_classify", *map(str, args)]
    return subprocess.Popen(command, cwd=cwd, preexec_fn=_default_sigint, **kwargs)


def wait_for_temp_output(directory: Path, name: str, proc: subprocess.Popen, *, written: bool = False) -> None:
    """Block until the labeller has opened its temporary output ``.NAME.*.tmp`` (it is mid-run);
    with ``written``, until labelled rows have reached that file."""
    deadline = time.monotonic() + 60
    while not [p for p in directory.glob(f".{name}.*.tmp") if not written or p.stat().st_size > 0]:
        assert proc.poll() is None, "finished before it could be interrupted"
        assert time.monotonic() < deadline, "no temporary output after 60 s"
        time.sleep(0.02)


def run_cli(*args: object, cwd: Path, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """The real program run to its end in a child process (output captured unless ``stdout`` or
    ``stderr`` is given), within ``timeout`` seconds."""
    if not {"stdout", "stderr", "capture_output"} & kwargs.keys():
        kwargs["capture_output"] = True
    return subprocess.run([sys.executable, "-m", "bpo_classify", *map(str, args)], cwd=cwd, timeout=timeout, **kwargs)


def distinct_duties(path: Path, n: int) -> Path:
    """A CSV (id, duty) of ``n`` distinct duties: no answer can be remembered, every row is real work."""
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
    """Whether ``pid`` runs (a zombie waiting for a reaper counts as gone; from /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, seconds: float) -> bool:
    """Whether ``condition()`` became true within ``seconds`` (checked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


#: Runs its arguments as a child and writes that child's peak RSS (KiB) to the descriptor given first.
#: Linux keeps the largest RSS a process had before exec in its ``ru_maxrss``, and a child forked
#: from pytest starts as a copy of pytest (over 1 GB late in the suite), so the program is forked
#: from this small launcher instead and only the launcher's children are measured.
_MEASURING_LAUNCHER = """
import os, resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
os.write(int(sys.argv[1]), str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss).encode())
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(*args: object, cwd: Path, timeout: float = 120) -> tuple[int, bytes, float]:
    """Run the real program to its end: its exit code, its stderr and its own peak resident
    memory in MiB (``ru_maxrss`` of that one process, in KiB on Linux, whatever the size of pytest)."""
    import threading

    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _MEASURING_LAUNCHER, str(write_end), sys.executable, "-m", "bpo_classify", *map(str, args)],
            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write_end,),
            preexec_fn=_default_sigint, start_new_session=True,  # its own group: the timeout kills the program too
        )
    finally:
        os.close(write_end)
    timer = threading.Timer(timeout, lambda: os.killpg(process.pid, signal.SIGKILL))  # bounded, the program too
    timer.start()
    try:
        err = process.stderr.read()  # type: ignore[union-attr]
        process.wait()
        with os.fdopen(read_end, "rb") as f:
            peak_kib = f.read()
    finally:
        timer.cancel()
        process.stderr.close()  # type: ignore[union-attr]
    assert peak_kib, f"the program did not run to its end (exit {process.returncode}): {err[-500:]!r}"
    return process.returncode, err, int(peak_kib) / 1024
