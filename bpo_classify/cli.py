"""The ``bpo-classify`` command line: parse options, call one library function, print what ``reporting`` makes of it.

Exit codes are decided in one place (:class:`~bpo_classify.cli_support.Cli`): 0 success,
1 a runtime problem (bad file, bad data, bad model), 2 a usage error, 130 interrupted.
scikit-learn is imported only by the commands that train or evaluate, so that
``predict``, ``label``, ``info``, ``--help`` and ``--version`` start quickly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import click

from . import __version__, reporting
from .atomic import require_directory
from .cli_support import (
    CONTEXT, Cli, capped_jobs, complete_writes, end_if_stopped, exit_on_signals, format_option, labelled_data_options, model_option, progress_bar, threshold_option,
    top_functions_option, utf8_arguments,
)
from .extras import PLOTS

if TYPE_CHECKING:  # pragma: no cover
    from .labeling import LabelOptions


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
@labelled_data_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bpo-model.bpoc"), show_default=True, help="Where to write the model.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Random seed for the folds (same data and seed, same model).")
@click.option("--cv", type=click.IntRange(min=0), default=5, show_default=True, help="Cross-validation folds for the summary (0 skips it).")
@click.option("--ambiguous", type=click.Path(path_type=Path), default=None, help="CSV (column text) of tasks the policy calls mixed, trained as 50/50 office (default: the bundled set with the bundled corpus).")
@click.option("--add", "add", type=click.Path(path_type=Path), multiple=True, help="A corrections CSV (from `bpo-classify review`) to train on as well (repeatable); keeps the bundled mixed-task and not-task sets.")
@click.option("--add-weight", type=click.FloatRange(min=0.0, min_open=True), default=1.0, show_default=True, help="Sample weight of each --add row (corpus rows weigh 1).")
@click.option("--kind", type=click.Choice(["default", "semantic"]), default="default", show_default=True, help="semantic: add a sentence encoder's embedding to the TF-IDF features (slower, more accurate; needs the semantic extra).")
def train(data: Path | None, columns: dict[str, str], out: Path, seed: int, cv: int, ambiguous: Path | None, add: tuple[Path, ...], add_weight: float, kind: str) -> None:
    """Train TF-IDF + logistic regression for office and function, and save the model.

    Prints cross-validated accuracy and macro-F1 for both labels.

    \b
    Example:
        bpo-classify train --out my-model.bpoc
        bpo-classify train --data my_labels.csv --text-column duty --out my-model.bpoc
        bpo-classify train --add corrections.csv --out corrected.bpoc
    """
    from .training import train as run

    def checked(problems: Sequence[Any]) -> None:  # before training starts, not minutes later
        click.echo(reporting.format_problems(problems), err=True, nl=False)
        if not any(p.fatal for p in problems):
            click.echo(reporting.training_started(data, cv), err=True, nl=False)

    result = run(data, **columns, seed=seed, cv=cv, ambiguous=ambiguous, out=out, on_checked=checked, add=add, add_weight=add_weight, kind=kind)
    click.echo(reporting.format_training(result, out), nl=False)


@cli.command(context_settings=CONTEXT)
@click.argument("texts", nargs=-1, required=True)
@model_option
@format_option("table", "json", "csv")
@threshold_option
@top_functions_option
def predict(texts: Sequence[str], model_path: Path | None, fmt: str, threshold: float | None, top_functions: int) -> None:
    """Classify one or more task descriptions (`-` reads one per line from stdin).

    \b
    Example:
        bpo-classify predict "process invoices" "answer live chat inquiries"
        cat duties.txt | bpo-classify predict - --format csv
        bpo-classify predict "resolve billing disputes" --top-functions 3
    """
    predictions = _load(model_path).predict(utf8_arguments(texts), threshold, top_functions)
    text = reporting.format_predictions(predictions, fmt, top_functions)
    if fmt == "csv":
        sys.stdout.write(text)  # byte for byte: click.echo would drop terminal escapes inside the texts
    else:
        click.echo(text, nl=False)


@cli.command(context_settings=CONTEXT)
@click.argument("input", type=click.Path(path_type=str, allow_dash=True))
@click.option("-o", "--output", type=click.Path(path_type=str, allow_dash=True), default="-", show_default=True, help="Output file (`-`: stdout), written atomically; its name gives the format: .csv, .tsv, .jsonl (also .gz), .parquet (needs pyarrow), .xlsx (needs the excel extra). With --engine dask: a new directory of part files.")
@click.option("--output-format", type=click.Choice(["csv", "tsv", "jsonl"]), default=None, help="Format of stdout (or of an output whose name does not say), default: the input's delimiter.")
@click.option("--excel-safe", is_flag=True, help="In CSV/TSV output, put an apostrophe before cells starting with = + - @ (or a tab or CR) so that a spreadsheet shows them as text, not formulas (.xlsx output is always safe).")
@click.option("--sheet", metavar="NAME", default=None, help="For an Excel workbook input: the sheet to label (default: the first).")
@click.option("--text-column", default=None, help="Column holding the task text (default: the only plausible one).")
@click.option("--prefix", default="", help="Prefix for the added column names, e.g. bpo_.")
@threshold_option
@top_functions_option
@model_option
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the input file.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True, help="dask: label on a Dask cluster; INPUT may be a glob or any fsspec URL (needs `pip install 'bpo-classify[dask]'`).")
@click.option("--scheduler", metavar="ADDRESS", default=None, help="With --engine dask: the scheduler of an existing cluster, e.g. tcp://10.0.0.5:8786 (default: start a local one).")
@click.option("--format", "parts_format", type=click.Choice(["csv", "parquet"]), default=None, help="With --engine dask: format of the part files (default: parquet if -o ends in .parquet, else csv).")
@click.option("--blocksize", metavar="SIZE", default=None, help="With --engine dask: split files into partitions of about SIZE, e.g. 64MB (only if no field holds a line break; default: one per file).")
@click.option("-j", "--jobs", type=click.IntRange(min=1, max=2**31 - 1), default=None, help="Worker processes for the local engine (default: one per CPU core; at most four per core). The output is the same for any number.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line (errors are still shown). The bar only appears when stderr is a terminal.")
def label(input: str, output: str, output_format: str | None, excel_safe: bool, sheet: str | None, text_column: str | None, prefix: str, threshold: float | None, top_functions: int, model_path: Path | None, encoding: str, engine: str, scheduler: str | None, parts_format: str | None, blocksize: str | None, jobs: int | None, quiet: bool) -> None:
    """Label every row of a CSV, TSV or Excel sheet of job duties, keeping all rows and columns.

    Adds office, office_confidence, function, function_confidence, needs_review and
    review_reason (and with --top-functions K the runners-up function_2 ... function_K).
    Prints a one-line summary to stderr.

    \b
    Example:
        bpo-classify label duties.csv -o duties_labelled.csv --text-column duty
        cat duties.csv | bpo-classify label - > labelled.csv
        bpo-classify label duties.xlsx --sheet Duties -o labelled.xlsx
        bpo-classify label export.csv.gz -o labelled.parquet --jobs 2
        bpo-classify label 'data/part-*.csv' --engine dask -o labelled/
    """
    from .labeling import LabelOptions, label_file
    from .excel import is_workbook_name
    from .outputs import format_for

    if engine == "dask":
        if jobs is not None:
            raise click.UsageError("--jobs applies to the local engine; with --engine dask the cluster's workers do the work")
        for name, value in (("--output-format", output_format), ("--sheet", sheet)):
            if value is not None:
                raise click.UsageError(f"{name} applies to the local engine; --engine dask reads CSV/TSV and writes parts (--format csv|parquet)")
        if excel_safe:
            raise click.UsageError("--excel-safe applies to the local engine; --engine dask writes its parts as they are")
        if parts_format is None and output != "-" and format_for(output.rstrip("/").removesuffix(".gz")).kind not in ("csv", "parquet"):
            raise click.UsageError(f"--engine dask writes a directory of csv or parquet parts, not {output}; e.g. -o labelled/ or --format parquet")
        options = LabelOptions(model_path, text_column, prefix, threshold, encoding, top_functions)  # the client sends the file's bytes
        return _label_dask(input, output, options, scheduler=scheduler, fmt=parts_format, blocksize=blocksize, quiet=quiet)
    for name, value in (("--scheduler", scheduler), ("--format", parts_format), ("--blocksize", blocksize)):
        if value is not None:
            raise click.UsageError(f"{name} only applies with --engine dask")
    if output != "-" and Path(output).is_dir():
        raise click.BadParameter(f"File {click.format_filename(output)!r} is a directory.", param_hint="'-o' / '--output'")
    if output.endswith("/"):
        raise click.UsageError(f"-o {output} ends with a slash, which names a directory; give a file name (a directory of parts is for --engine dask)")
    try:
        format_for(output, ",", output_format)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if sheet is not None and not is_workbook_name(input):
        raise click.UsageError(f"--sheet is for Excel workbook inputs (.xlsx, .xls, ...), and {input} is not one")
    options = LabelOptions(_load(model_path), text_column, prefix, threshold, encoding, top_functions)
    with progress_bar(shown=not quiet and sys.stderr.isatty()) as progress:
        summary = label_file(
            input, output, options, jobs=capped_jobs(jobs), progress=progress, sheet=sheet, output_format=output_format,
            excel_safe=excel_safe,
        )
    if not quiet:
        click.echo(reporting.labelled(summary, output), err=True, nl=False)


def _label_dask(input: str, output: str, options: LabelOptions, *, scheduler: str | None, fmt: str | None, blocksize: str | None, quiet: bool) -> None:
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
    job = plan_files(input, output, options, fmt=fmt, blocksize=blocksize)
    with cluster(scheduler) as client:
        workers = len(client.scheduler_info().get("workers", {}))
        if not quiet:
            click.echo(reporting.dask_started(job.partitions, workers, client.scheduler.address), err=True, nl=False)
        summary, parts = job.run()
    if not quiet:
        click.echo(reporting.labelled(summary, output, parts, job.fmt), err=True, nl=False)


@cli.command(context_settings=CONTEXT)
@model_option
@format_option("text", "json")
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
    terms = strongest(model, top_terms) if top_terms else None
    click.echo(reporting.format_info(model, str(model_path or "default (shipped with the package)"), terms, fmt), nl=False)


@cli.command(context_settings=CONTEXT)
@model_option
@click.option("--data", "data_paths", type=click.Path(path_type=Path), multiple=True, help="Labelled CSV/TSV to score the model on (repeatable). Without it: cross-validation on the corpus.")
@click.option("--cv", type=click.IntRange(min=2), default=5, show_default=True, help="Folds for cross-validation.")
@format_option("text", "json", "markdown")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None, help="Also write PNG confusion matrices and a reliability diagram here (needs matplotlib).")
@click.option("--with-cv", is_flag=True, help="Cross-validate on the corpus as well when --data is given.")
@click.option("--compare", "compare_path", type=click.Path(path_type=Path), default=None, help="Another model file: score both on the same --data files, side by side (before/after `train --add`).")
@threshold_option
def evaluate(model_path: Path | None, data_paths: tuple[Path, ...], cv: int, fmt: str, plots: Path | None, with_cv: bool, compare_path: Path | None, threshold: float | None) -> None:
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
        bpo-classify evaluate --data held_out.csv --compare corrected.bpoc
    """
    from .evaluation import evaluate as run

    if compare_path is not None:
        return _compare(model_path, compare_path, data_paths, fmt, with_cv or plots is not None, threshold)
    if plots is not None:
        PLOTS.require("--plots")  # fail before minutes of cross-validation, not after
    if with_cv or not data_paths:
        click.echo(f"cross-validating ({cv} folds, refitting the model's settings on each) ...", err=True)
    report = run(_load(model_path), data_paths, cv=cv, threshold=threshold, with_cv=with_cv or not data_paths)
    click.echo(reporting.format_report(report, fmt), nl=False)
    _write_plots(report, plots)


def _compare(model_path: Path | None, other: Path, data_paths: tuple[Path, ...], fmt: str, refused: bool, threshold: float | None) -> None:
    """``evaluate --compare``: both models on the same files."""
    from .evaluation import compare

    if not data_paths or refused:
        raise click.UsageError("--compare scores both models on --data files (labelled rows neither trained on); it takes no --with-cv or --plots")
    names = (str(model_path or "default model"), str(other))
    click.echo(reporting.format_comparison(compare(_load(model_path), _load(other), data_paths, names=names, threshold=threshold), fmt), nl=False)


def _write_plots(report: dict[str, Any], plots: Path | None) -> None:
    if plots is not None:
        from .plots import write_plots

        for path in write_plots(report, plots):
            click.echo(f"wrote {path}", err=True)


@cli.command("check-data", context_settings=CONTEXT)
@click.argument("data", type=click.Path(path_type=Path), required=False)
@labelled_data_options
@click.option("--cv", type=click.IntRange(min=0), default=5, show_default=True, help="Report functions with fewer rows than this many folds.")
def check_data(data: Path | None, columns: dict[str, str], cv: int) -> None:
    """Check labelled training data before training: labels, blanks, duplicates, conflicts, class sizes.

    Exits 1 when there is a problem that would stop training; duplicates alone are warnings.

    \b
    Example:
        bpo-classify check-data my_labels.csv --text-column duty
    """
    from .corpus import check_labelled, load_labelled

    loaded = load_labelled(data, **columns, check=False)
    problems = check_labelled(loaded, min_per_class=cv)
    click.echo(reporting.format_problems(problems), nl=False)
    click.echo(reporting.check_summary(len(loaded), problems), err=True, nl=False)
    if any(p.fatal for p in problems):
        raise click.exceptions.Exit(1)


@cli.command(context_settings=CONTEXT)
@click.argument("text")
@model_option
@format_option("text", "json")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many words/phrases to show.")
@threshold_option
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

    click.echo(reporting.format_explanation(run(_load(model_path), text, threshold), top, fmt), nl=False)


@cli.command("model-card", context_settings=CONTEXT)
@model_option
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
    from .modelcard import evaluated_card

    if plots is not None:
        PLOTS.require("--plots")
    if str(output) != "-":
        require_directory(Path(output))  # before minutes of cross-validation, not after
    click.echo(f"cross-validating ({cv} folds) and scoring {len(data_paths)} file(s) ...", err=True)
    text, report = evaluated_card(_load(model_path), data_paths, cv=cv, output=None if str(output) == "-" else output)
    _write_plots(report, plots)
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        click.echo(f"model card written to {output}", err=True)


from .cli_summarize import summarize_cmd  # noqa: E402  (each newer command's click code lives in its own module)

cli.add_command(summarize_cmd)
from .cli_review import apply_corrections, review  # noqa: E402 - the review loop's commands live in their own module

cli.add_command(review); cli.add_command(apply_corrections)  # noqa: E702
from .cli_serve import serve  # noqa: E402  (each newer command's click code lives in its own module)
cli.add_command(serve)


def main() -> None:
    """Console-script entry point."""
    complete_writes()
    exit_on_signals()
    try:
        cli(prog_name="bpo-classify")
    except SystemExit as done:
        end_if_stopped(done.code)
        raise
