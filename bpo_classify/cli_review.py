"""The review loop's commands: ``review`` (the local review page) and ``apply-corrections``.

Registered on the ``bpo-classify`` group in ``cli.py``; ``train --add`` and
``evaluate --compare`` are options of those commands there.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import reporting
from .cli_support import CONTEXT, model_option

_text_column = click.option("--text-column", default=None, help="Column holding the task text (default: the only plausible one).")
_prefix = click.option("--prefix", default=None, help="Prefix of the labelled columns, as given to `label --prefix` (default: found from the header).")
_encoding = click.option("--encoding", default="utf-8", show_default=True, help="Encoding of the labelled file.")


def default_corrections(labelled: Path) -> Path:
    """``duties_labelled.csv`` -> ``duties_labelled.corrections.csv`` beside it."""
    return labelled.with_name(labelled.name.split(".")[0] + ".corrections.csv")


@click.command(context_settings=CONTEXT)
@click.argument("labelled", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--corrections", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Corrections CSV to write (and resume from). Default: LABELLED's name with .corrections.csv.")
@model_option
@_text_column
@_prefix
@_encoding
def review(labelled: Path, port: int, corrections: Path | None, model_path: Path | None, text_column: str | None, prefix: str | None, encoding: str) -> None:
    """Review the rows a labelled file flags needs_review, in a local web page (127.0.0.1 only).

    Least certain first; identical texts once. Keys: f/b office, 1-9 and 0 a function,
    / filter, Enter the highlighted one, s skip, u undo. Each decision is written to the
    corrections file at once; run the command again to resume. Ctrl-C stops the page.

    \b
    Example:
        bpo-classify label duties.csv -o duties_labelled.csv
        bpo-classify review duties_labelled.csv --corrections corrections.csv
    """
    from .corrections import ReviewSession
    from .model import load_model
    from .review import make_server

    corrections = corrections or default_corrections(labelled)
    session = ReviewSession(labelled, corrections, load_model(model_path), text_column=text_column, prefix=prefix, encoding=encoding)
    server = make_server(session, port)
    click.echo(reporting.review_started(server.url, session.progress(), corrections), err=True, nl=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how the page is stopped: every decision is on disk already
        click.echo(reporting.review_stopped(session.progress(), corrections), err=True, nl=False)
    finally:
        server.server_close()


@click.command("apply-corrections", context_settings=CONTEXT)
@click.argument("labelled", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("corrections", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Where to write the labelled file with the reviewed labels (atomically).")
@_text_column
@_prefix
@_encoding
def apply_corrections(labelled: Path, corrections: Path, output: Path, text_column: str | None, prefix: str | None, encoding: str) -> None:
    """Write LABELLED with the reviewed rows' office and function replaced, and a `reviewed` column.

    Reviewed rows (a text with a decision in CORRECTIONS) get needs_review false; the
    confidences and review_reason stay what the model said.

    \b
    Example:
        bpo-classify apply-corrections duties_labelled.csv corrections.csv -o final.csv
    """
    from .corrections import apply_corrections as run

    summary = run(labelled, corrections, output, text_column=text_column, prefix=prefix, encoding=encoding)
    click.echo(reporting.corrections_applied(summary, output), err=True, nl=False)
