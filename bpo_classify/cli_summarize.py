"""The ``summarize`` command: per-group front/back shares, service towers and review counts of a labelled file."""

from __future__ import annotations

from pathlib import Path

import click

from . import reporting
from .atomic import atomic_output
from .cli_support import format_option


@click.command("summarize")
@click.argument("labelled", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--by", "by", multiple=True, metavar="COLUMN", help="Group by this column (repeatable: role, site, ...). Without it: the total only.")
@click.option("--weight", metavar="COLUMN", default=None, help="Shares of this numeric column (hours_per_week, FTE) instead of rows.")
@click.option("--prefix", default=None, help="The --prefix given to label (default: found from the columns).")
@click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the labelled file.")
@format_option("text", "csv", "json", "markdown")
@click.option("-o", "--output", default="-", show_default=True, help="Write the summary here (atomically) instead of stdout.")
def summarize_cmd(labelled: str, by: tuple[str, ...], weight: str | None, prefix: str | None, encoding: str, fmt: str, output: str) -> None:
    """Summarise a labelled file per group: rows, front/back share, function mix, rows to review.

    \b
    Example:
        bpo-classify label duties.csv -o labelled.csv
        bpo-classify summarize labelled.csv --by role
        bpo-classify summarize labelled.csv --by site --by role --weight hours_per_week --format csv
    """
    from .summary import summarize

    text = reporting.format_summary(summarize(labelled, by, weight, prefix, encoding), fmt)
    if output == "-":
        click.echo(text, nl=False)
        return
    with atomic_output(Path(output)) as handle:
        handle.write(text)
