"""The ``summarize`` command: per-group front/back shares, service towers and review counts of a labelled file."""

from __future__ import annotations

from pathlib import Path

import click

from . import reporting
from .atomic import atomic_output
from .cli_support import format_option, model_option


@click.command("summarize")
@click.argument("labelled", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--by", "by", multiple=True, metavar="COLUMN", help="Group by this column (repeatable: role, site, ...). Without it: the total only.")
@click.option("--weight", metavar="COLUMN", default=None, help="Shares of this numeric column (hours_per_week, FTE) instead of rows.")
@click.option("--prefix", default=None, help="The --prefix given to label (default: found from the columns).")
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the labelled file.")
@format_option("text", "csv", "json", "markdown")
@click.option("-o", "--output", default="-", show_default=True, help="Write the summary here (atomically) instead of stdout.")
@click.option("--html", "html", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a self-contained HTML report here (charts, rows to review, provenance).")
@click.option("--text-column", default=None, help="With --html: the text column, for the rows to review (default: the only plausible one).")
@model_option
def summarize_cmd(
    labelled: str, by: tuple[str, ...], weight: str | None, prefix: str | None, encoding: str, fmt: str, output: str,
    html: Path | None, text_column: str | None, model_path: Path | None,
) -> None:
    """Summarise a labelled file per group: rows, front/back share, function mix, rows to review.

    With --html, also a one-file HTML report (no network needed to view it); --model names the
    model that labelled the file, for the report's provenance.

    \b
    Example:
        bpo-classify label duties.csv -o labelled.csv
        bpo-classify summarize labelled.csv --by role
        bpo-classify summarize labelled.csv --by site --by role --weight hours_per_week --format csv
        bpo-classify summarize labelled.csv --by role --html report.html
    """
    from .summary import summarize

    if html is not None and labelled == "-":
        raise click.UsageError("--html reads the labelled file again for the rows to review; give its name, not -")
    summary = summarize(labelled, by, weight, prefix, encoding)
    text = reporting.format_summary(summary, fmt)
    if html is not None:
        from .model import load_model
        from .report_html import page

        name = str(model_path) if model_path else "default (shipped with the package)"
        report = page(summary, labelled, load_model(model_path), model_name=name, text_column=text_column, prefix=prefix, encoding=encoding)
        with atomic_output(html) as handle:
            handle.write(report)
    if output == "-":
        click.echo(text, nl=False)
    else:
        with atomic_output(Path(output)) as handle:
            handle.write(text)
    if html is not None:
        click.echo(f"HTML report written to {html}", err=True)
