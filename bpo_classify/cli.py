"""The ``bpo-classify`` command line: parse options, call one library function, print.

Exit codes, decided in one place (:class:`Cli`): 0 success, 1 a runtime problem
(bad file, bad data, bad model), 2 a usage error, 130 interrupted.
scikit-learn is imported only by the commands that train or evaluate, so that
``predict``, ``label``, ``info``, ``--help`` and ``--version`` start quickly.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from . import __version__
from .errors import BpoClassifyError, InputFileError
from .tables import write_table

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
MODEL_OPTION = click.option(
    "--model", "model_path", type=click.Path(path_type=Path), default=None,
    help="Model file to use (default: the model shipped with the package).",
)
THRESHOLD_OPTION = click.option(
    "--threshold", type=click.FloatRange(0.0, 1.0), default=None,
    help="Flag needs_review when the office probability is below this (default: the model's, 0.75 unless retrained).",
)


class Cli(click.Group):
    """Turns library errors into one-line messages with exit code 1, and Ctrl-C into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            # Flush here, so a write error on stdout (a full disk) is reported below
            # instead of as a traceback when the interpreter exits.
            sys.stdout.flush()
            return result
        except BpoClassifyError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted; no output was written.", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # `bpo-classify ... | head -1`: the reader left; exit quietly without a traceback.
            _silence_stdout()
            ctx.exit(0)
        except OSError as exc:
            # The library turns its own I/O failures into BpoClassifyError; what is left
            # is writing to stdout, e.g. `bpo-classify label big.csv > /dev/full`.
            if exc.filename:
                raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from None
            _silence_stdout()
            raise click.ClickException(f"cannot write to standard output: {exc.strerror or exc}") from None


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (e.g. click's test runner): nothing buffered to drop


@click.group(cls=Cli, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="bpo-classify")
def cli() -> None:
    """Classify BPO task descriptions as front-office or back-office, with their business function.

    \b
    Example:
        bpo-classify predict "process invoices" "answer live chat inquiries"
    """


def _load(model_path: Path | None):  # type: ignore[no-untyped-def]
    from .model import load_model

    return load_model(model_path)


@cli.command(context_settings=CONTEXT)
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Labelled CSV/TSV (default: the bundled corpus).")
@click.option("--text-column", default="text", show_default=True, help="Column holding the task text.")
@click.option("--office-column", default="office", show_default=True, help="Column holding front-office/back-office.")
@click.option("--function-column", default="function", show_default=True, help="Column holding the business function.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bpo-model.bpoc"), show_default=True, help="Where to write the model.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for the folds (same data and seed, same model).")
@click.option("--cv", type=click.IntRange(min=0), default=5, show_default=True, help="Cross-validation folds for the summary (0 skips it).")
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the data file.")
@click.option("--ambiguous", type=click.Path(path_type=Path), default=None, help="CSV (column text) of tasks the policy calls mixed, trained as 50/50 office (default: the bundled set with the bundled corpus).")
def train(data: Path | None, text_column: str, office_column: str, function_column: str, out: Path, seed: int, cv: int, encoding: str, ambiguous: Path | None) -> None:
    """Train TF-IDF + logistic regression for office and function, and save the model.

    Prints cross-validated accuracy and macro-F1 for both labels.

    \b
    Example:
        bpo-classify train --out my-model.bpoc
        bpo-classify train --data my_labels.csv --text-column duty --out my-model.bpoc
    """
    from .corpus import check_labelled, load_labelled_unchecked
    from .errors import CorpusError, OutputFileError
    from .model import save_model
    from .training import train as train_model

    # Everything that would stop the run is found before training starts, not minutes later.
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise OutputFileError(f"output directory does not exist: {out.parent}; create it first")
    loaded = load_labelled_unchecked(
        data, text_column=text_column, office_column=office_column, function_column=function_column, encoding=encoding
    )
    problems = check_labelled(loaded, min_per_class=cv)
    for problem in problems:
        click.echo(_problem_line(problem), err=True)
    fatal = sum(p.fatal for p in problems)
    if fatal:
        raise CorpusError(
            f"the training data has {fatal} problem{'s' if fatal > 1 else ''} (listed above); nothing was trained"
        )
    click.echo(f"training on {data or 'the bundled corpus'}" + (f" with {cv}-fold cross-validation" if cv else "") + " ...", err=True)
    result = train_model(
        data, text_column=text_column, office_column=office_column, function_column=function_column,
        seed=seed, cv=cv, encoding=encoding, ambiguous=ambiguous,
    )
    save_model(result.model, out)
    meta = result.model.metadata
    click.echo(f"trained on {meta['training_data']['rows']} rows (sha256 {meta['training_data']['sha256'][:12]})")
    if cv:
        scores = result.metrics["cross_validation"]
        click.echo(f"{cv}-fold cross-validation (seed {seed}):")
        for label in ("office", "function"):
            s = scores[label]
            click.echo(f"  {label:<9} accuracy {s['accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}")
    click.echo(f"model written to {out}")


@cli.command(context_settings=CONTEXT)
@click.argument("texts", nargs=-1, required=True)
@MODEL_OPTION
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@THRESHOLD_OPTION
def predict(texts: Sequence[str], model_path: Path | None, fmt: str, threshold: float | None) -> None:
    """Classify one or more task descriptions (`-` reads one per line from stdin).

    \b
    Example:
        bpo-classify predict "process invoices" "answer live chat inquiries"
        cat duties.txt | bpo-classify predict - --format csv
    """
    items: list[str] = []
    for n, text in enumerate(texts, 1):
        if text == "-":
            items += _stdin_lines()
        elif _is_utf8(text):
            items.append(text)
        else:
            raise InputFileError(f"text {n} is not valid UTF-8 (undecodable bytes in the argument); pass UTF-8 text")
    predictions = _load(model_path).predict(items, threshold)
    if fmt == "json":
        click.echo(json.dumps([p.as_dict() for p in predictions], indent=2, ensure_ascii=False))
    elif fmt == "csv":
        write_table(
            sys.stdout, ["text", "office", "office_confidence", "function", "function_confidence", "needs_review"],
            ([p.text, p.office or "", _num(p.office_confidence), p.function or "", _num(p.function_confidence), str(p.needs_review).lower()] for p in predictions),
        )
    else:
        rows = [["office", "p", "function", "p", "review", "text"]]
        for p in predictions:
            rows.append([p.office or "-", _num(p.office_confidence) or "-", p.function or "-", _num(p.function_confidence) or "-", "REVIEW" if p.needs_review else "", p.text])
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5])


def _stdin_lines() -> list[str]:
    """Standard input as UTF-8, one text per line; a line ends at \\n, \\r\\n or \\r only."""
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(
            f"standard input is not valid UTF-8 (byte {data[exc.start:exc.start + 1]!r} on line {line}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None
    lines = re.split(r"\r\n|\r|\n", text)
    if lines[-1] == "":
        lines.pop()
    return lines


def _is_utf8(text: str) -> bool:
    # Bytes in argv that are not UTF-8 arrive as lone surrogates (PEP 383).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _problem_line(problem: Any) -> str:
    """One training-data problem as ``check-data`` and ``train`` print it, rows included."""
    return f"{'error' if problem.fatal else 'warning'}: {problem}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@cli.command(context_settings=CONTEXT)
@click.argument("input", type=click.Path(path_type=str, allow_dash=True))
@click.option("-o", "--output", type=click.Path(path_type=str, allow_dash=True), default="-", show_default=True, help="Output CSV (`-`: stdout), or Parquet if it ends in .parquet (needs pyarrow). Written atomically. With --engine dask: a new directory of part files.")
@click.option("--text-column", default=None, help="Column holding the task text (default: the only plausible one).")
@click.option("--prefix", default="", help="Prefix for the added column names, e.g. bpo_.")
@THRESHOLD_OPTION
@MODEL_OPTION
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the input file.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True, help="dask: label on a Dask cluster; INPUT may be a glob or any fsspec URL (needs `pip install 'bpo-classify[dask]'`).")
@click.option("--scheduler", metavar="ADDRESS", default=None, help="With --engine dask: the scheduler of an existing cluster, e.g. tcp://10.0.0.5:8786 (default: start a local one).")
@click.option("--format", "parts_format", type=click.Choice(["csv", "parquet"]), default=None, help="With --engine dask: format of the part files (default: parquet if -o ends in .parquet, else csv).")
@click.option("--blocksize", metavar="SIZE", default=None, help="With --engine dask: split files into partitions of about SIZE, e.g. 64MB (only if no field holds a line break; default: one per file).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Worker processes for the local engine (default: one per CPU core). The output is the same for any number.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line (errors are still shown). The bar only appears when stderr is a terminal.")
def label(input: str, output: str, text_column: str | None, prefix: str, threshold: float | None, model_path: Path | None, encoding: str, engine: str, scheduler: str | None, parts_format: str | None, blocksize: str | None, jobs: int | None, quiet: bool) -> None:
    """Label every row of a CSV of job duties, keeping all rows and columns.

    Adds office, office_confidence, function, function_confidence and needs_review.
    Prints a one-line summary to stderr.

    \b
    Example:
        bpo-classify label duties.csv -o duties_labelled.csv --text-column duty
        cat duties.csv | bpo-classify label - > labelled.csv
        bpo-classify label export.csv.gz -o labelled.parquet --jobs 2
        bpo-classify label 'data/part-*.csv' --engine dask -o labelled/
    """
    from .labeling import label_csv

    if engine == "dask" and jobs is not None:
        raise click.UsageError("--jobs applies to the local engine; with --engine dask the cluster's workers do the work")
    if engine == "dask":
        return _label_dask(input, output, text_column, prefix, threshold, model_path, encoding, scheduler, parts_format, blocksize, quiet)
    for name, value in (("--scheduler", scheduler), ("--format", parts_format), ("--blocksize", blocksize)):
        if value is not None:
            raise click.UsageError(f"{name} only applies with --engine dask")
    if output != "-" and Path(output).is_dir():
        raise click.BadParameter(f"File {click.format_filename(output)!r} is a directory.", param_hint="'-o' / '--output'")
    from .progress import ProgressBar

    bar = None if quiet or not sys.stderr.isatty() else ProgressBar(sys.stderr)
    try:
        summary = label_csv(
            input, output, model=_load(model_path), text_column=text_column, prefix=prefix,
            threshold=threshold, encoding=encoding, jobs=jobs, progress=bar.update if bar else None,
        )
    finally:
        if bar:
            bar.close()
    where = "" if output == "-" else f" -> {output}"
    if not quiet:
        click.echo(summary.line() + where, err=True)


def _label_dask(input: str, output: str, text_column: str | None, prefix: str, threshold: float | None, model_path: Path | None, encoding: str, scheduler: str | None, parts_format: str | None, blocksize: str | None, quiet: bool = False) -> None:
    """`label --engine dask`: inputs and output checked first, then a cluster started or joined."""
    from .dask_engine import cluster, plan_files, require_dask

    if input == "-" or output == "-":
        raise click.UsageError("--engine dask reads files and writes a directory of parts: name them, e.g. 'data/*.csv' -o out/")
    require_dask()
    if blocksize is not None:
        from dask.utils import parse_bytes

        try:
            parse_bytes(blocksize)
        except (ValueError, TypeError):
            raise click.BadParameter(f"{blocksize!r} is not a size such as 64MB", param_hint="'--blocksize'") from None
    job = plan_files(
        input, output, model=model_path, text_column=text_column, prefix=prefix, threshold=threshold,
        encoding=encoding, fmt=parts_format, blocksize=blocksize,
    )
    with cluster(scheduler) as client:
        workers = len(client.scheduler_info().get("workers", {}))
        if not quiet:
            click.echo(f"labelling {job.partitions} partition(s) on {workers} Dask worker(s) at {client.scheduler.address} ...", err=True)
        summary, parts = job.run()
    if not quiet:
        click.echo(f"{summary.line()} -> {output} ({parts} {job.fmt} part file{'' if parts == 1 else 's'})", err=True)


@cli.command(context_settings=CONTEXT)
@MODEL_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--top-terms", type=click.IntRange(min=1), default=None, help="Also list the N strongest words/phrases for each office and function.")
def info(model_path: Path | None, fmt: str, top_terms: int | None) -> None:
    """Show a model's metadata: versions, training data, labels, metrics.

    \b
    Example:
        bpo-classify info
        bpo-classify info --model my-model.bpoc --format json
        bpo-classify info --top-terms 8
    """
    from .explain import top_terms as strongest

    model = _load(model_path)
    meta = model.metadata
    terms = strongest(model, top_terms) if top_terms else None
    if fmt == "json":
        click.echo(json.dumps({**meta, **({"top_terms": terms} if terms else {})}, indent=2, ensure_ascii=False))
        return
    data = meta.get("training_data", {})
    click.echo(f"model            {model_path or 'default (shipped with the package)'}")
    click.echo(f"made by          bpo-classify {meta.get('package_version')}, scikit-learn {meta.get('sklearn_version')}")
    click.echo(f"created          {meta.get('created_at')}")
    click.echo(f"training data    {data.get('source')} ({data.get('rows')} rows, sha256 {data.get('sha256')})")
    click.echo(f"seed             {meta.get('seed')}")
    click.echo(f"offices          {', '.join(meta.get('offices', []))}")
    click.echo(f"functions        {', '.join(meta.get('functions', []))}")
    click.echo(f"review threshold {model.threshold}")
    click.echo(f"features         {sum(len(b.vocabulary) for b in model.blocks)} terms (" + ", ".join(b.description for b in model.blocks) + ")")
    click.echo(f"office reads     {', '.join(model.office_blocks)}")
    mixed = data.get("ambiguous_rows")
    click.echo(f"mixed detector   {f'trained on {mixed} mixed tasks' if model.mixed_coef is not None else 'none'}")
    cv = meta.get("metrics", {}).get("cross_validation")
    if cv:
        for label_name in ("office", "function"):
            s = cv[label_name]
            click.echo(f"cv {label_name:<13} accuracy {s['accuracy']:.3f}, macro-F1 {s['macro_f1']:.3f} ({cv['folds']}-fold)")
    if terms:
        for group in [g for g in ("office", "mixed", "function") if g in terms]:
            click.echo(f"\nstrongest terms by {group if group != 'mixed' else 'mixed-task detector'} (coefficient):")
            for label_name, pairs in terms[group].items():
                click.echo(f"  {label_name:<20} " + ", ".join(f"{t} ({w:+.2f})" for t, w in pairs))


@cli.command(context_settings=CONTEXT)
@MODEL_OPTION
@click.option("--data", "data_paths", type=click.Path(path_type=Path), multiple=True, help="Labelled CSV/TSV to score the model on (repeatable). Without it: cross-validation on the corpus.")
@click.option("--cv", type=click.IntRange(min=2), default=5, show_default=True, help="Folds for cross-validation.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None, help="Also write PNG confusion matrices and a reliability diagram here (needs matplotlib).")
@click.option("--with-cv", is_flag=True, help="Cross-validate on the corpus as well when --data is given.")
@THRESHOLD_OPTION
def evaluate(model_path: Path | None, data_paths: tuple[Path, ...], cv: int, fmt: str, plots: Path | None, with_cv: bool, threshold: float | None) -> None:
    """Score the model: cross-validation on the corpus, or the model on labelled files.

    Cross-validation refits the model's settings on each fold and never scores a row
    the fold's model saw. Files need text and office columns; a function column is
    scored where present (empty or `none` rows are skipped for function).

    \b
    Example:
        bpo-classify evaluate
        bpo-classify evaluate --data ../shared/external/onet_dev.tsv --format json
        bpo-classify evaluate --data held_out.csv --plots plots/
        bpo-classify evaluate --with-cv --data ../shared/external/onet_dev.tsv
    """
    from .evaluation import evaluate as run
    from .reporting import format_report

    if plots is not None:
        from .plots import _pyplot

        _pyplot()  # fail before minutes of cross-validation, not after
    if with_cv or not data_paths:
        click.echo(f"cross-validating ({cv} folds, refitting the model's settings on each) ...", err=True)
    report = run(_load(model_path), data_paths, cv=cv, threshold=threshold, with_cv=with_cv or not data_paths)
    click.echo(format_report(report, fmt), nl=False)
    if plots is not None:
        from .plots import write_plots

        for path in write_plots(report, plots):
            click.echo(f"wrote {path}", err=True)


@cli.command("check-data", context_settings=CONTEXT)
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option("--text-column", default="text", show_default=True)
@click.option("--office-column", default="office", show_default=True)
@click.option("--function-column", default="function", show_default=True)
@click.option("--cv", type=click.IntRange(min=0), default=5, show_default=True, help="Report functions with fewer rows than this many folds.")
@click.option("--encoding", default="utf-8", show_default=True)
def check_data(data: Path | None, text_column: str, office_column: str, function_column: str, cv: int, encoding: str) -> None:
    """Check labelled training data before training: labels, blanks, duplicates, conflicts, class sizes.

    Exits 1 when there is a problem that would stop training; duplicates alone are warnings.

    \b
    Example:
        bpo-classify check-data my_labels.csv --text-column duty
    """
    from .corpus import LabelledData, check_labelled, load_labelled_unchecked

    loaded: LabelledData = load_labelled_unchecked(
        data, text_column=text_column, office_column=office_column, function_column=function_column, encoding=encoding
    )
    problems = check_labelled(loaded, min_per_class=cv)
    for problem in problems:
        click.echo(_problem_line(problem))
    fatal = sum(p.fatal for p in problems)
    click.echo(f"{len(loaded)} rows checked: {fatal} errors, {len(problems) - fatal} warnings", err=True)
    if fatal:
        raise click.exceptions.Exit(1)


@cli.command(context_settings=CONTEXT)
@click.argument("text")
@MODEL_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many words/phrases to show.")
@THRESHOLD_OPTION
def explain(text: str, model_path: Path | None, fmt: str, top: int, threshold: float | None) -> None:
    """Show which words and phrases pushed TEXT towards front- or back-office, and by how much.

    Contributions are exact log-odds shares of the linear model (character n-grams are
    summed into their word); they add up, with the intercept, to the office score. The
    mixed-task detector's terms are shown the same way, then how the two combine.

    \b
    Example:
        bpo-classify explain "call customers to confirm their new address"
    """
    from .explain import explain as run

    e = run(_load(model_path), text, threshold)
    if fmt == "json":
        click.echo(json.dumps(e.as_dict(), indent=2, ensure_ascii=False))
        return
    if e.office is None:
        click.echo("no text to explain (empty input): needs review")
        return
    click.echo(f"{e.office} ({e.office_confidence:.4f}), {e.function} ({e.function_confidence:.4f}); runner-up function: {e.runner_up_function} ({e.runner_up_confidence:.4f})")
    front = e.office_confidence if e.office == "front-office" else 1 - e.office_confidence
    if e.mixed_probability is None:
        click.echo("log-odds towards front-office (+) or back-office (-):")
        _echo_terms(e.terms, e.intercept, top, f"P(front-office) = {front:.4f}")
        return
    click.echo("office, if the task is clear: log-odds towards front-office (+) or back-office (-):")
    _echo_terms(e.terms, e.intercept, top, f"P(front-office | clear) = {e.clear_front_probability:.4f}")
    click.echo("mixed-task detector: log-odds towards mixed (+) or clear (-):")
    _echo_terms(e.mixed_terms, e.mixed_intercept or 0.0, top, f"P(mixed) = {e.mixed_probability:.4f}")
    click.echo(
        f"P(front-office) = 0.5 x {e.mixed_probability:.4f} + {1 - e.mixed_probability:.4f} x "
        f"{e.clear_front_probability:.4f} = {front:.4f}"
    )


#: How explain marks terms that are not plain words or phrases.
_KIND_NOTE = {"characters": " (characters)", "opening": " (opening words)"}


def _echo_terms(terms: Sequence[Any], intercept: float, top: int, result: str) -> None:
    """The ``top`` strongest contributions, the rest summed, the intercept and the total."""
    for c in terms[:top]:
        click.echo(f"  {c.contribution:+7.3f}  {c.term}" + _KIND_NOTE.get(c.kind, ""))
    if len(terms) > top:
        more = len(terms) - top
        click.echo(f"  {sum(c.contribution for c in terms[top:]):+7.3f}  ({more} more term{'s' if more > 1 else ''})")
    click.echo(f"  {intercept:+7.3f}  (intercept)")
    click.echo(f"  {sum(c.contribution for c in terms) + intercept:+7.3f}  total -> {result}")


@cli.command("model-card", context_settings=CONTEXT)
@MODEL_OPTION
@click.option("--data", "data_paths", type=click.Path(path_type=Path), multiple=True, help="Labelled held-out file(s) to report on as well (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path, allow_dash=True), default="-", show_default=True, help="Where to write the Markdown card (`-`: stdout).")
@click.option("--cv", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None, help="Also write the evaluation's PNG figures here (needs matplotlib).")
def model_card_cmd(model_path: Path | None, data_paths: tuple[Path, ...], output: Path, cv: int, plots: Path | None) -> None:
    """Generate the model card (Markdown): intended use, data, metrics, calibration, failure modes.

    Runs cross-validation on the corpus (a few minutes) and scores each --data file.

    \b
    Example:
        bpo-classify model-card --data ../shared/external/onet_dev.tsv -o models/MODEL_CARD.md
    """
    from .atomic import atomic_output
    from .evaluation import evaluate as run
    from .modelcard import cross_validation_failures, model_card

    model = _load(model_path)
    click.echo(f"cross-validating ({cv} folds) and scoring {len(data_paths)} file(s) ...", err=True)
    oof: dict[str, Any] = {}
    report = run(model, data_paths, cv=cv, with_cv=True, oof=oof)
    text = model_card(model, report, cross_validation_failures(oof["data"], oof))
    if plots is not None:
        from .plots import write_plots

        for path in write_plots(report, plots):
            click.echo(f"wrote {path}", err=True)
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        with atomic_output(output) as f:
            f.write(text)
        click.echo(f"model card written to {output}", err=True)


def main() -> None:
    """Console-script entry point."""
    import signal

    def terminated(signum: int, frame: object) -> None:
        # Unwind like Ctrl-C, so atomic_output removes its temporary file.
        click.echo("Terminated; no output was written.", err=True)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    cli(prog_name="bpo-classify")
