"""``bpo-classify serve``: the JSON API on uvicorn (its click code, kept out of ``cli.py``).

The command checks its options and the model, then hands the app of
:mod:`bpo_classify.server` to uvicorn; with ``--workers`` N each worker process builds
its own app (the model loaded once per worker).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from .cli_support import CONTEXT, model_option, word_stops_as
from .errors import InputFileError
from .extras import SERVE


def read_token(token_file: Path | None) -> str | None:
    """The bearer token: the first line of ``token_file``, else ``$BPO_CLASSIFY_TOKEN``, else ``None``."""
    from .server import TOKEN_ENV

    if token_file is None:
        return os.environ.get(TOKEN_ENV) or None
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the token file {token_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise InputFileError(f"the token file {token_file} is empty; put the token on its first line")
    return token


@click.command(context_settings=CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface; then set a token).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@model_option
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes, each with the model loaded once.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File holding a bearer token every request but /healthz and /readyz must send (default: $BPO_CLASSIFY_TOKEN, if set).")
@click.option("--max-texts", type=click.IntRange(min=1), default=1000, show_default=True, help="Most texts in one /v1/predict request.")
@click.option("--max-body", type=click.IntRange(min=1), default=1_000_000, show_default=True, help="Largest JSON request body, in bytes (413 above it).")
@click.option("--max-upload", type=click.IntRange(min=1), default=100_000_000, show_default=True, help="Largest /v1/label upload, in bytes.")
def serve(host: str, port: int, model_path: Path | None, workers: int, token_file: Path | None, max_texts: int, max_body: int, max_upload: int) -> None:
    """Serve the classifier as a JSON API (needs `pip install 'bpo-classify[serve]'`).

    POST /v1/predict, /v1/explain, /v1/label; GET /v1/model, /healthz, /readyz; docs at /docs.
    One log line per request on stderr. SIGTERM: requests in flight finish, new ones are refused.

    \b
    Example:
        bpo-classify serve --port 8000
        curl -s localhost:8000/v1/predict -H 'content-type: application/json' -d '{"texts": ["process invoices"]}'
    """
    SERVE.require("bpo-classify serve")
    from .model import load_model
    from .server import ServeSettings, log_to_stderr, run

    settings = ServeSettings(
        model_path=None if model_path is None else str(model_path), max_texts=max_texts, max_body_bytes=max_body,
        max_upload_bytes=max_upload, token=read_token(token_file),
    )
    model = load_model(model_path)  # a bad model is a one-line error now, not one per worker
    if host not in ("127.0.0.1", "localhost", "::1") and settings.token is None:
        click.echo(f"warning: listening on {host} with no token: anyone who can reach it can use it (--token-file)", err=True)
    log_to_stderr()
    # uvicorn handles SIGINT and SIGTERM itself; SIGHUP and SIGQUIT stop the server through
    # cli_support's handler (exit 129, 131), which says so in a server's words.
    word_stops_as("server stopped ({name})")
    # uvicorn re-raises SIGTERM once it has shut down gracefully: that is a clean stop, not an interruption.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    run(settings, model, host, port, workers)
