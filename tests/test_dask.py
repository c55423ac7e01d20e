"""The Dask engine: a real two-process LocalCluster on 127.0.0.1, compared with the local engine.

One cluster (2 worker processes, 1 thread each) serves the module; it is closed at the
end and its worker processes are checked to be gone. `label --engine dask` without
`--scheduler` starts (and must stop) a cluster of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cloudpickle
import pandas as pd
import psutil
import pytest
from click.testing import CliRunner

import dask.dataframe as dd
from distributed import Client, LocalCluster

from bpo_classify import dask_engine
from bpo_classify.cli import cli
from bpo_classify.dask_engine import (
    DaskClusterError, label_dataframe, label_files, plan_files, read_tables, write_parts,
)
from bpo_classify.errors import ColumnConflictError, InputFileError, MissingColumnError, OutputFileError
from bpo_classify.labeling import LabelSummary, format_labels, label_csv
from bpo_classify.tables import write_table
from conftest import read_csv, write_csv

# The partition function that kills its worker is defined here; the workers cannot
# import this test module, so it travels by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

# A real cluster per module: minutes, not seconds (`make test-fast` leaves it out).
pytestmark = pytest.mark.slow

HEADER = ["posting_id", "role", "duty"]
TRICKY = [
    "line one\nline two, with \"quotes\"",
    "",
    "   ",
    "NA",
    "null",
    "  answer inbound calls  ",
    "Café reconciliation — Überweisungen prüfen",
    "a\rb carriage return inside",
    "1,5",
]


@pytest.fixture(scope="module")
def dask_client():
    """A real distributed.LocalCluster: two worker processes, one thread each, loopback only."""
    # dashboard_address: the scheduler serves HTTP anyway; port 0 on loopback, never a fixed 8787.
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster, Client(cluster) as client:
        yield client
        pids = list(client.run(os.getpid).values())
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
        assert time.monotonic() < deadline, "worker processes still running after the cluster closed"
        time.sleep(0.1)


@pytest.fixture
def files(corpus, tmp_path) -> list[Path]:
    """Four CSV files of job duties (160-220 rows each) with awkward cells and rows mixed in."""
    directory = tmp_path / "in"
    directory.mkdir()
    paths = []
    n = 0
    for i, size in enumerate((160, 220, 180, 200)):
        rows = [HEADER]
        for j in range(size):
            text = corpus.texts[(i * 997 + j * 31) % len(corpus.texts)]
            if j % 23 == 5:
                text = TRICKY[(i + j) % len(TRICKY)]
            rows.append([f"p{n}", f"role {j % 7}", text])
            n += 1
        rows.insert(40, [f"p{n}", "short row"])  # one field missing: padded, as the local engine pads it
        rows.insert(90, [])  # a blank line: an empty row
        n += 1
        with open(directory / f"part-{i}.csv", "w", encoding="utf-8", newline="") as f:
            write_table(f, rows[0], rows[1:])  # quotes a field holding "\r", as the local engine writes it
        paths.append(directory / f"part-{i}.csv")
    return paths


def local_outputs(paths: list[Path], tmp_path: Path) -> tuple[list[bytes], LabelSummary]:
    """What `label` (the local engine) writes for each file, and the summed summary."""
    out, total = [], LabelSummary()
    for p in paths:
        target = tmp_path / f"local-{p.name}"
        s = label_csv(p, target, text_column="duty")
        out.append(target.read_bytes())
        for name in ("rows", "front", "back", "needs_review", "empty"):
            setattr(total, name, getattr(total, name) + getattr(s, name))
    return out, total


def test_files_labelled_exactly_as_the_local_engine(dask_client, files, tmp_path):
    """One CSV part per file, byte for byte what the local engine writes for that file."""
    expected, local = local_outputs(files, tmp_path)
    summary, parts = label_files(str(tmp_path / "in" / "part-*.csv"), str(tmp_path / "out"), text_column="duty")
    assert parts == len(files)
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["_SUCCESS", "part-00000.csv", "part-00001.csv", "part-00002.csv", "part-00003.csv"]
    assert [p.read_bytes() for p in written[1:]] == expected
    assert (summary.rows, summary.front, summary.back, summary.needs_review, summary.empty) == (
        local.rows, local.front, local.back, local.needs_review, local.empty
    )
    assert summary.rows == 4 * 2 + 160 + 220 + 180 + 200
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_blocksize_splits_files_into_more_partitions(dask_client, files, tmp_path):
    """With --blocksize (no line breaks inside fields) each file gives several parts; rows as local."""
    plain = tmp_path / "plain.csv"
    write_csv(plain, [row for row in read_csv(files[1]) if not any("\n" in c or "\r" in c for c in row)])
    expected = (tmp_path / "local.csv")
    label_csv(plain, expected, text_column="duty")
    summary, parts = label_files(str(plain), str(tmp_path / "out"), text_column="duty", blocksize=4000)
    assert parts > 3
    rows = []
    for part in sorted((tmp_path / "out").glob("part-*.csv")):
        header, *body = read_csv(part)
        rows += body
    assert [header, *rows] == read_csv(expected)
    assert summary.rows == len(rows)


def test_parquet_parts_equal_the_local_engines_parquet(dask_client, files, tmp_path):
    """-o out.parquet (and --quiet): one Parquet part per file, the schema and rows `label -o x.parquet` writes."""
    import pyarrow.parquet as pq

    result = CliRunner().invoke(cli, [
        "label", str(tmp_path / "in" / "part-[01].csv"), "--engine", "dask", "--scheduler", dask_client.scheduler.address,
        "-o", str(tmp_path / "out.parquet"), "--text-column", "duty", "--prefix", "bpo_", "--quiet",
    ], catch_exceptions=False)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert sorted(p.name for p in (tmp_path / "out.parquet").iterdir()) == [
        "_SUCCESS", "part-00000.parquet", "part-00001.parquet"
    ]
    for i, p in enumerate(files[:2]):
        label_csv(p, tmp_path / "local.parquet", text_column="duty", prefix="bpo_")
        local = pq.read_table(tmp_path / "local.parquet")
        part = pq.read_table(tmp_path / "out.parquet" / f"part-{i:05d}.parquet")
        assert part.schema.remove_metadata() == local.schema.remove_metadata()
        assert str(part.schema.field("bpo_office_confidence").type) == "double"
        assert part.to_pylist() == local.to_pylist()


def test_top_functions_parts_equal_the_local_engines(dask_client, files, tmp_path):
    """--top-functions 3: CSV and Parquet parts with the runner-up columns, as the local engine writes them."""
    import pyarrow.parquet as pq

    for suffix in ("csv", "parquet"):
        result = CliRunner().invoke(cli, [
            "label", str(tmp_path / "in" / "part-0.csv"), "--engine", "dask", "--scheduler", dask_client.scheduler.address,
            "-o", str(tmp_path / f"out.{suffix}"), "--text-column", "duty", "--top-functions", "3", "--quiet",
        ], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        label_csv(files[0], tmp_path / f"local.{suffix}", text_column="duty", top_functions=3)
    assert (tmp_path / "out.csv" / "part-00000.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    part, local = pq.read_table(tmp_path / "out.parquet" / "part-00000.parquet"), pq.read_table(tmp_path / "local.parquet")
    assert part.schema.remove_metadata() == local.schema.remove_metadata() and part.to_pylist() == local.to_pylist()
    assert part.schema.names[-4:] == ["function_2", "function_2_confidence", "function_3", "function_3_confidence"]


def _die_once(df: pd.DataFrame, marker: str) -> pd.DataFrame:
    """The first partition to get here kills its own worker process (once per test run)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return df
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os._exit(1)


def test_worker_killed_mid_run_loses_and_duplicates_nothing(dask_client, files, tmp_path):
    """A worker dies while labelling: Dask reruns its partition; every row is written exactly once."""
    marker = tmp_path / "killed"
    frame, delimiter = read_tables(str(tmp_path / "in" / "part-*.csv"))
    doomed = frame.map_partitions(_die_once, str(marker), meta=frame._meta)
    before = set(dask_client.run(os.getpid).values())
    summary, parts = write_parts(label_dataframe(doomed, "duty"), str(tmp_path / "out"), delimiter=delimiter)

    killed = int(marker.read_text())
    assert killed in before and not (psutil.pid_exists(killed) and psutil.Process(killed).status() != psutil.STATUS_ZOMBIE)
    expected, _ = local_outputs(files, tmp_path)
    written = [p.read_bytes() for p in sorted((tmp_path / "out").glob("part-*.csv"))]
    assert written == expected
    ids = [row[0] for part in sorted((tmp_path / "out").glob("part-*.csv")) for row in read_csv(part)[1:]]
    assert ids.count("") == 4  # the blank line of each file
    ids = [i for i in ids if i]
    assert summary.rows == len(ids) + 4 == 4 * 2 + 160 + 220 + 180 + 200
    assert Counter(Counter(ids).values()) == {1: len(ids)}
    dask_client.wait_for_workers(2, timeout=30)  # the nanny restarted it, for the tests after this one


def test_cli_on_an_existing_scheduler(dask_client, files, tmp_path):
    """`label GLOB --engine dask --scheduler ADDRESS -o DIR`: the parts and the summary line."""
    expected, local = local_outputs(files, tmp_path)
    result = CliRunner().invoke(cli, [
        "label", str(tmp_path / "in" / "part-*.csv"), "--engine", "dask", "--scheduler",
        dask_client.scheduler.address, "-o", str(tmp_path / "out"), "--text-column", "duty",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"labelling 4 partition(s) on 2 Dask worker(s) at {dask_client.scheduler.address} ...\n"
        f"{local.line()} -> {tmp_path / 'out'} (4 csv part files)\n"
    )
    assert [p.read_bytes() for p in sorted((tmp_path / "out").glob("part-*.csv"))] == expected


def test_cli_starts_and_stops_its_own_local_cluster(files, tmp_path):
    """Without --scheduler: a local cluster on 127.0.0.1, shut down afterwards (no processes left)."""
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    result = CliRunner().invoke(cli, [
        "label", str(files[0]), "--engine", "dask", "-o", str(tmp_path / "out"),
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Dask worker(s) at tcp://127.0.0.1:" in result.stderr
    expected, _ = local_outputs(files[:1], tmp_path)
    assert (tmp_path / "out" / "part-00000.csv").read_bytes() == expected[0]
    deadline = time.monotonic() + 10
    while left := [p for p in psutil.Process().children(recursive=True) if p.pid not in children and p.status() != psutil.STATUS_ZOMBIE]:
        assert time.monotonic() < deadline, f"processes left running: {left}"
        time.sleep(0.1)


def test_label_dataframe_python_api(dask_client, model):
    """label_dataframe adds the six columns to any Dask DataFrame, missing text included."""
    texts = ["process invoices", None, "answer live chat inquiries", float("nan"), "", "reconcile bank statements"]
    pdf = pd.DataFrame({"id": range(6), "task": pd.array(texts, dtype=object)})
    frame = dd.from_pandas(pdf, npartitions=3)
    labelled = label_dataframe(frame, "task", model=model, prefix="bpo_", threshold=0.9)
    assert list(labelled.columns) == ["id", "task", "bpo_office", "bpo_office_confidence", "bpo_function",
                                      "bpo_function_confidence", "bpo_needs_review", "bpo_review_reason"]
    out = labelled.compute()
    assert out["id"].tolist() == list(range(6))
    assert list(map(tuple, out.iloc[:, 2:].astype(object).values.tolist())) == format_labels(
        model, [t if isinstance(t, str) else None for t in texts], 0.9
    )


def test_label_dataframe_checks_columns_before_running(model):
    """A missing text column or a clash with an added column fails at once, naming the fix."""
    frame = dd.from_pandas(pd.DataFrame({"duty": ["x"], "office": ["y"]}), npartitions=1)
    with pytest.raises(ColumnConflictError, match="choose another --prefix"):
        label_dataframe(frame, "duty", model=model)
    with pytest.raises(MissingColumnError, match="column 'task' not found"):
        label_dataframe(frame, "task", model=model)


@pytest.mark.parametrize(("content", "message"), [
    (b"duty,role\nprocess invoices,a\nanswer calls,b,extra\n",
     "a data row has 3 fields but the header has 2; check the delimiter or quoting of that row"),
    (b"duty,role\nprocess invoices,a,,x\n",
     "a data row has 4 fields but the header has 2; check the delimiter or quoting of that row"),
    (b"duty,role\nprocess invoices,a\n" + b"answer calls,b\n" * 50 + b"x,y,z,w\n",
     "a data row has 4 fields but the header has 2; check the delimiter or quoting of that row"),
    (b"duty,duty\nx,y\n", "column name(s) 'duty' appear more than once in {path}; the Dask engine needs unique column names"),
    (b"", "{path} is empty: expected a header row with column names"),
    (b"duty\ncaf\xe9\n" * 3, "{path} is not valid utf-8 (byte b'\\xe9'); try --encoding latin-1 or cp1252"),
])
def test_bad_input_one_line_error_and_no_output(dask_client, tmp_path, content, message):
    """Bad input found on the client or on a worker: the same one-line error, nothing written."""
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    result = CliRunner().invoke(cli, [
        "label", str(source), "--engine", "dask", "--scheduler", dask_client.scheduler.address, "-o", str(tmp_path / "out"),
    ])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == "Error: " + message.format(path=source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    assert source.read_bytes() == content


def test_input_and_output_problems_found_before_any_cluster(files, tmp_path):
    """No matching file, different headers, a non-empty output directory, UTF-16: errors at planning."""
    other = write_csv(tmp_path / "in" / "other.csv", [["role", "task"], ["a", "b"]])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x", encoding="utf-8")
    cases = [
        ((str(tmp_path / "in" / "nope-*.csv"), str(tmp_path / "out")), {},
         f"no input file matches {tmp_path / 'in' / 'nope-*.csv'}"),
        (([str(files[0]), str(other)], str(tmp_path / "out")), {},
         f"{other} has columns role, task but {files[0]} has posting_id, role, duty; label files with different columns separately"),
        ((str(files[0]), str(tmp_path / "full")), {},
         f"output directory {tmp_path / 'full'} is not empty; remove it or choose a new one"),
        ((str(files[0]), str(tmp_path / "nope" / "out")), {},
         f"output directory does not exist: {tmp_path / 'nope'}; create it first"),
        ((str(tmp_path / "in"), str(tmp_path / "out")), {},
         f"{tmp_path / 'in'} is a directory; pass a glob of its files, e.g. '{tmp_path / 'in'}/*.csv'"),
        ((str(files[0]), str(tmp_path / "out")), {"encoding": "utf-16"},
         "--engine dask reads ASCII-compatible encodings only (utf-8, latin-1, cp1252, ...), not utf-16; "
         "convert the files first, e.g. iconv -f utf-16 -t utf-8"),
    ]
    for args, options, message in cases:
        with pytest.raises((InputFileError, OutputFileError)) as err:
            plan_files(*args, **options)
        assert str(err.value) == message
    assert not (tmp_path / "out").exists()


def test_cli_usage_errors(tmp_path, files):
    """Dask-only options without --engine dask, or stdin/stdout with it: usage errors (exit 2)."""
    runner = CliRunner()
    for args, message in [
        (["label", str(files[0]), "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler only applies with --engine dask"),
        (["label", str(files[0]), "--format", "parquet"], "--format only applies with --engine dask"),
        (["label", str(files[0]), "--engine", "dask"],
         "--engine dask reads files and writes a directory of parts: name them, e.g. 'data/*.csv' -o out/"),
    ]:
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_unreachable_scheduler_is_a_one_line_error():
    """A scheduler address where nothing listens: DaskClusterError naming the address."""
    with pytest.raises(DaskClusterError, match=r"^cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9: .*; check the address"):
        with dask_engine.cluster("tcp://127.0.0.1:9", timeout="1s"):
            pass


def test_without_dask_the_error_says_how_to_install(monkeypatch, files, tmp_path):
    """With Dask missing, `--engine dask` exits 1 with one line naming the extra to install."""
    for name in ("dask", "dask.dataframe", "distributed", "fsspec"):
        monkeypatch.setitem(sys.modules, name, None)  # `import dask` now raises ImportError
    result = CliRunner().invoke(cli, ["label", str(files[0]), "--engine", "dask", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr == "Error: --engine dask needs Dask, which is not installed: pip install 'bpo-classify[dask]'\n"


def test_import_and_local_label_never_import_dask(tmp_path):
    """`import bpo_classify` and the local `label` run without loading Dask or distributed."""
    source = write_csv(tmp_path / "in.csv", [["duty"], ["process invoices"]])
    code = (
        "import sys; from bpo_classify.cli import cli\n"
        f"cli(['label', {str(source)!r}, '-o', {str(tmp_path / 'out.csv')!r}], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
    assert (tmp_path / "out.csv").exists()
