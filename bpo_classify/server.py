"""The HTTP API of ``bpo-classify serve``: a FastAPI app over the same library calls as the CLI.

Each route parses its request, calls one library function and serialises what
``reporting`` makes of the answer; library errors become JSON errors in one place
(:func:`_error`), every error has the shape ``{"error": {"code": ..., "message": ...}}``,
and no traceback ever reaches a client. One pure-ASGI guard in front of the app checks
the bearer token, enforces the body-size limits and logs one line per request (method,
path, status, milliseconds, number of texts; never the texts).

Needs the ``serve`` extra (``pip install 'bpo-classify[serve]'``): the command line
checks it (:data:`~bpo_classify.extras.SERVE`) before importing this module.

Example:
    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app(ServeSettings()))
    >>> client.post("/v1/predict", json={"texts": ["process invoices"]}).json()["predictions"][0]["office"]
    'back-office'
    >>> client.post("/v1/predict", json={"texts": []}).json()["error"]["code"]
    'invalid_request'
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Optional

import orjson
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from . import __version__, reporting, scoring
from .errors import BpoClassifyError
from .explain import explain as explain_text
from .labeling import LabelOptions, labelled_stream
from .model import Model, load_model

log = logging.getLogger("bpo_classify.server")

#: The environment variable a bearer token may be given in (``--token-file`` wins).
TOKEN_ENV = "BPO_CLASSIFY_TOKEN"
#: Paths answered without a token (load balancers and orchestrators probe them).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})


@dataclass(frozen=True)
class ServeSettings:
    """How the app is configured: the model, the limits, the token.

    ``model_path`` ``None`` is the shipped model; ``token`` ``None`` lets every request
    in (the default bind address is loopback).
    """

    model_path: Optional[str] = None
    max_texts: int = 1000
    max_body_bytes: int = 1_000_000
    max_upload_bytes: int = 100_000_000
    token: Optional[str] = None

    def to_env(self) -> str:
        """The settings as JSON, for worker processes that build their own app (see :func:`app_from_env`)."""
        return json.dumps(asdict(self))


#: Where worker processes find their settings (``--workers`` > 1 starts the app by import string).
SETTINGS_ENV = "BPO_CLASSIFY_SERVE_SETTINGS"


class ApiError(StarletteHTTPException):
    """An answer other than success: the HTTP status, a stable machine-readable code, and a message that says what to do.

    An HTTP exception, so FastAPI passes it on when it is raised while the body is read (the size limit).
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Every error the API sends, in its one shape."""
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _dumps(value: Any) -> bytes:
    """``value`` as UTF-8 JSON: orjson (a tenth of ``json.dumps``'s time on a 100-text answer), or
    ``json.dumps`` with ``\\u`` escapes for what orjson refuses (a lone surrogate a client sent in a text)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, allow_nan=False).encode("ascii")


def _json(value: Any) -> Response:
    # Encoded here: FastAPI's jsonable_encoder walks every value again and costs more than predicting.
    return Response(_dumps(value), media_type="application/json")


# -- request bodies (validated by pydantic; their schemas are what /docs shows) ---------------
class PredictRequest(BaseModel):
    """Texts to classify, one result each, in order."""

    texts: list[Optional[str]] = Field(description="Task descriptions; null or blank gives empty labels and needs_review.", examples=[["process invoices", "answer live chat inquiries"]])
    threshold: Optional[float] = Field(None, ge=0.0, le=1.0, description="needs_review when the office probability is below this (default: the model's own).")
    top_functions: int = Field(3, ge=1, le=15, description="The function shown plus this many minus one runners-up.")


class ExplainRequest(BaseModel):
    """One text to explain, as ``bpo-classify explain --format json``."""

    text: str = Field(examples=["call customers to confirm their new address"])
    threshold: Optional[float] = Field(None, ge=0.0, le=1.0)


#: What each route expects, for the 422 message of a body that is not it.
_EXPECTED = {
    "/v1/predict": 'send a JSON object such as {"texts": ["process invoices"]}: "texts" a non-empty list of strings, '
                   'optional "threshold" (0-1) and "top_functions" (1-15)',
    "/v1/explain": 'send a JSON object such as {"text": "process invoices"}: "text" a string, optional "threshold" (0-1)',
    "/v1/label": 'send a multipart form with the CSV or TSV as field "file" (curl -F file=@duties.csv), '
                 'optional fields "text_column", "prefix", "threshold", "top_functions" (1-15) and "encoding"',
}


#: The CLI options library messages name, and the form fields of /v1/label that do the same.
_FIELDS = {"--text-column": "the text_column field", "--prefix": "the prefix field", "--encoding ": "the form field encoding="}


def _validation_message(path: str, errors: list[dict[str, Any]]) -> str:
    """One line: what was wrong (the first problem pydantic found) and what to send instead."""
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    what = first.get("msg", "invalid request")
    if first.get("type") == "json_invalid":
        what = "the body is not valid JSON"
    elif first.get("type") in ("model_attributes_type", "dict_type"):
        what = "the body must be a JSON object"
    elif where:
        what = f"{where}: {what}"
    return f"{what}; {_EXPECTED.get(path, 'see /docs for what to send')}"


#: What a client is told when the server fails (the traceback goes to the log, never to a client).
CRASHED = "the server failed to answer this request; it has been logged"


# -- the guard: token, body size, one log line ------------------------------------------------
class Guard:
    """Pure ASGI middleware in front of the app: 401 without the token, 413 over the size limit, one log line per request."""

    def __init__(self, app: Callable[..., Awaitable[None]], settings: ServeSettings):
        self.app = app
        self.settings = settings
        self.expected = f"Bearer {settings.token}".encode("utf-8") if settings.token else None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Awaitable[dict[str, Any]]], send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = [500]

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                state["answered"] = True
            await send(message)

        try:
            refusal = self.refuse(scope)
            if refusal is not None:
                await refusal(scope, receive, sending)
                return
            await self.app(scope, self.limited(scope, receive), sending)
        except Exception as exc:
            if "answered" in state:
                raise  # a response has begun (FastAPI's error middleware has answered and logged this one)
            # Outside FastAPI (the fast path, the guard itself): logged here with its traceback, never sent.
            log.error("unexpected error on %s %s", scope["method"], scope["path"], exc_info=exc)
            await _error(500, "internal_error", CRASHED)(scope, receive, sending)
        finally:
            ms = (time.perf_counter() - started) * 1000
            request_log.line(f"{scope['method']} {scope['path']} {status[0]} {ms:.1f}ms texts={state.get('texts', '-')}")

    def limit(self, path: str) -> int:
        return self.settings.max_upload_bytes if path == "/v1/label" else self.settings.max_body_bytes

    def refuse(self, scope: dict[str, Any]) -> Response | None:
        """The 401 or 413 answer a request gets before it is read, or ``None``."""
        headers = dict(scope["headers"])
        if self.expected is not None and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):  # constant time: no guessing the token byte by byte
                why = "missing" if not given else "not the expected token"
                return _error(401, "unauthorized", f"bearer token {why}; send the header 'Authorization: Bearer <token>'",
                              {"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit(scope["path"]):
            return _too_large(self.limit(scope["path"]))
        return None

    def limited(self, scope: dict[str, Any], receive: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[..., Awaitable[dict[str, Any]]]:
        """``receive``, counting the body: a chunked body that runs over the limit raises :class:`ApiError` (413)."""
        limit, seen = self.limit(scope["path"]), [0]

        async def counted() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise ApiError(413, "body_too_large", _too_large_message(limit))
            return message

        return counted


def _too_large_message(limit: int) -> str:
    return f"the request body is over the limit of {limit:,} bytes; send less per request (or start the server with a higher limit)"


def _too_large(limit: int) -> Response:
    return _error(413, "body_too_large", _too_large_message(limit))


class RequestLog:
    """The request log: one line per request (method, path, status, milliseconds, texts; never a text).

    With a stream (:func:`log_to_stderr`, as ``serve`` sets up) a line is
    ``<date> <time>,<ms> <pid> bpo_classify.server <message>``, formatted here, and the lines of
    one event-loop turn are written together, in one write, when the turn ends: a ``LogRecord``
    per request and a write per line cost a worker more than scoring a short text (profiled).
    Without one (the app embedded elsewhere, the tests' ``caplog``) each line goes to the
    ``bpo_classify.server`` logger.

    Example:
        >>> import asyncio, io
        >>> out = RequestLog(io.StringIO())
        >>> async def two_requests():
        ...     out.line("GET /healthz 200 0.1ms texts=-"); out.line("GET /readyz 200 0.1ms texts=-")
        ...     return out.stream.getvalue()  # still this turn: nothing written yet
        >>> asyncio.run(two_requests()), out.stream.getvalue().count("bpo_classify.server GET /")
        ('', 2)
    """

    def __init__(self, stream: Any = None):
        self.stream = stream
        self.pending: list[str] = []
        self.prefix = f" {os.getpid()} {log.name} "
        self._second, self._stamp = -1, ""

    def line(self, message: str) -> None:
        if self.stream is None:
            log.info("%s", message)
            return
        now = time.time()
        second = int(now)
        if second != self._second:  # the date and time of day change once a second, not per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        self.pending.append(f"{self._stamp},{int((now - second) * 1000):03d}{self.prefix}{message}\n")
        if len(self.pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)  # after the other requests of this turn
            except RuntimeError:  # no event loop: now
                self.flush()

    def flush(self) -> None:
        """Write the lines not written yet (also at exit: :func:`log_to_stderr` registers it)."""
        if not self.pending:
            return
        lines, self.pending = "".join(self.pending), []
        try:
            self.stream.write(lines)
            self.stream.flush()
        except (OSError, ValueError):  # stderr gone or closed: nowhere left to say so
            pass


#: The server's request log (a stream once :func:`log_to_stderr` has run).
request_log = RequestLog()


# -- the fast path of POST /v1/predict ----------------------------------------------------------
class PredictRoute:
    """Pure ASGI middleware that answers a valid ``POST /v1/predict`` JSON body itself.

    FastAPI's routing, dependency resolution and request objects cost more per request
    than scoring a short text (profiled in bench_serve's notes), so the hot path reads the
    body, validates it with the same :class:`PredictRequest` model and calls the same
    ``answer`` as the route. Anything else, including every body that does not validate,
    goes on to FastAPI (the body replayed), so errors are exactly the route's.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], answer: Callable[[PredictRequest, dict[str, Any]], Awaitable[bytes]]):
        self.app = app
        self.answer = answer

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Awaitable[dict[str, Any]]], send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/predict" or scope["method"] != "POST" or not _sent_as_json(scope):
            await self.app(scope, receive, send)
            return
        try:
            body = await _body(receive)
            if body is None:
                return  # the client has gone: nothing to answer
            request = _parsed(body)
            if request is None:
                await self.app(scope, _replay(body, receive), send)
                return
            payload = await self.answer(request, scope)
        except ApiError as exc:  # 413 while the body is read, 422 for an empty or too long list
            await _error(exc.status, exc.code, exc.message)(scope, receive, send)
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode("ascii"))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _body(receive: Callable[..., Awaitable[dict[str, Any]]]) -> bytes | None:
    """The whole request body (``None``: the client disconnected first)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()  # the guard's receive: over the size limit it raises ApiError (413)
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _sent_as_json(scope: dict[str, Any]) -> bool:
    """Whether the request's Content-Type is ``application/json`` (parameters such as ``charset`` aside)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


def _parsed(body: bytes) -> PredictRequest | None:
    """The body as a valid request, or ``None`` (FastAPI then says what is wrong).

    orjson first (several times faster); the standard library's parser for what orjson
    refuses but FastAPI accepts (lone surrogate escapes, NaN, a byte-order mark).
    """
    try:
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            value = json.loads(body)
        return PredictRequest.model_validate(value) if isinstance(value, dict) else None
    except (ValueError, ValidationError):  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def _replay(body: bytes, receive: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A ``receive`` that gives the body already read, then whatever comes next (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return replayed


# -- scoring small requests together ---------------------------------------------------------
#: Requests with at most this many texts are scored together with the others that arrive at the same moment
#: (eight 100-text requests cost about a quarter less scored as one call than one by one; a larger request
#: is scored alone, at once).
BATCH_TEXTS = 250


class Batcher:
    """Scores the texts of small requests that arrive together in one :meth:`Model.predict_dicts` call.

    A call has a fixed cost (a few dozen NumPy operations per feature block) that a batch
    shares: under concurrent single-text requests, scoring the requests the event loop has
    read in one go costs much less per text. Results are the same as one call per request
    (a text's scores do not depend on its batch); requests are grouped by their options.
    """

    def __init__(self, model: Model):
        self.model = model
        self.pending: list[tuple[list[Optional[str]], Optional[float], int, Any]] = []

    async def predict(self, texts: list[Optional[str]], threshold: Optional[float], top: int) -> list[dict[str, Any]]:
        """The answers to one request's texts, as :meth:`Model.predict_dicts` gives them."""
        if len(texts) > BATCH_TEXTS:
            return self.model.predict_dicts(texts, threshold, top)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.pending:
            loop.call_soon(self.flush)  # after the requests the loop is already handling have joined
        self.pending.append((texts, threshold, top, future))
        return await future

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        groups: dict[tuple[Optional[float], int], list[Any]] = {}
        for item in pending:
            groups.setdefault((item[1], item[2]), []).append(item)
        for (threshold, top), items in groups.items():
            try:
                predictions = self.model.predict_dicts([t for item in items for t in item[0]], threshold, top)
            except Exception as exc:  # each request answers 500 through the app's handler
                for *_, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for texts, _, _, future in items:
                if not future.done():  # the client may have gone
                    future.set_result(predictions[start : start + len(texts)])
                start += len(texts)


# -- the app ----------------------------------------------------------------------------------
def create_app(settings: ServeSettings, model: Model | None = None) -> "Api":
    """The API for ``settings``, with ``model`` (default: loaded from ``settings.model_path``, once)."""
    model = model if model is not None else load_model(settings.model_path)
    model.predict(["warm up the scorer"])  # builds the scorer now, not on the first request
    # A text with enough word-to-word joins that the scorer builds its bigram table (half a second,
    # once): every request after it looks its joining bigrams up in one search, not one at a time.
    model.predict([" ".join(["process invoices"] * scoring.BIGRAM_TABLE_MIN)])
    model_name = settings.model_path or "default (shipped with the package)"
    version = reporting.model_version(model)
    info = reporting.format_info(model, model_name, None, "json").encode("utf-8")
    app = Api(
        title="bpo-classify", version=__version__,
        description="Classify BPO task descriptions as front-office or back-office, with their business function.",
    )
    app.state.model = model
    batcher = Batcher(model)

    async def answer(body: PredictRequest, scope: dict[str, Any]) -> bytes:
        """The /v1/predict answer to a valid body (:class:`ApiError` for an empty or too long list)."""
        scope.setdefault("state", {})["texts"] = len(body.texts)
        if not body.texts:
            raise ApiError(422, "invalid_request", f"texts is empty; {_EXPECTED['/v1/predict']}")
        if len(body.texts) > settings.max_texts:
            raise ApiError(422, "too_many_texts", f"{len(body.texts)} texts sent; at most {settings.max_texts} per request: split the list")
        # Scored on the event loop (a thread hop costs more than a small batch), small requests together.
        predictions = await batcher.predict(body.texts, body.threshold, body.top_functions)
        return _dumps({"model_version": version, "predictions": predictions})  # as reporting.predictions_payload

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(BpoClassifyError)
    async def library_error(request: Request, exc: BpoClassifyError) -> Response:
        # The CLI's one-line messages (about the file sent), with its options named as the form's fields.
        message = str(exc)
        for option, form_field in _FIELDS.items():
            message = message.replace(option, form_field)
        return _error(422, "invalid_input", message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(422, "invalid_request", _validation_message(request.url.path, list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = {404: f"no such endpoint: {request.url.path}; see /docs",
                   405: f"{request.method} is not allowed on {request.url.path}; see /docs"}.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), message)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # The only place an unexpected error is seen: logged here with its traceback, never sent.
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal_error", CRASHED)

    @app.post("/v1/predict", summary="Classify a list of texts")
    async def predict(body: PredictRequest, request: Request) -> Response:
        """One result per text: office and its confidence, function, runners-up, needs_review and why, model version."""
        # Only what PredictRoute passes on (a body it could not read as a valid request, or one
        # not sent as application/json) gets here; a valid one is answered the same way.
        return Response(await answer(body, request.scope), media_type="application/json")

    @app.post("/v1/explain", summary="Explain one text's prediction")
    async def explain(body: ExplainRequest, request: Request) -> Response:
        """Each word's and phrase's contribution, as ``bpo-classify explain --format json``."""
        request.state.texts = 1
        text = reporting.format_explanation(explain_text(model, body.text, body.threshold), fmt="json")
        return Response(text.encode("utf-8"), media_type="application/json")

    @app.post("/v1/label", summary="Label every row of a CSV or TSV file", response_class=StreamingResponse)
    async def label(
        request: Request, file: UploadFile = File(description="The CSV or TSV (optionally .gz) to label."),
        text_column: Optional[str] = Form(None), prefix: str = Form(""),
        threshold: Optional[float] = Form(None, ge=0.0, le=1.0), encoding: str = Form("utf-8"),
        top_functions: int = Form(1, ge=1, le=15),
    ) -> Response:
        """The file back with every row and column kept and the labelling columns added, streamed as it is labelled."""
        path = await run_in_threadpool(_spool, file)
        try:
            options = LabelOptions(model, text_column, prefix, threshold, encoding, top_functions)
            stream = await run_in_threadpool(labelled_stream, path, options, file.filename or "upload.csv")
        except BaseException:
            os.unlink(path)
            raise
        request.state.texts = stream.summary.rows
        media = "text/tab-separated-values" if stream.delimiter == "\t" else "text/csv"
        name = "labelled." + ("tsv" if stream.delimiter == "\t" else "csv")
        return StreamingResponse(
            stream.chunks, media_type=f"{media}; charset=utf-8", background=BackgroundTask(os.unlink, path),
            headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Rows": str(stream.summary.rows)},
        )

    @app.get("/v1/model", summary="The model's metadata")
    async def model_info() -> Response:
        """What ``bpo-classify info --format json`` prints."""
        return Response(info, media_type="application/json")

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz", summary="Readiness: the model is loaded")
    async def readyz() -> Response:
        return _json({"status": "ready", "model_version": version})

    # In front of FastAPI (whose own layers cost a valid /v1/predict more than scoring it): the guard
    # first (the token, the limits, the log, a JSON 500 for a crash before any answer), then the fast
    # path, then FastAPI for everything else.
    app.front = Guard(PredictRoute(FastAPI.__call__.__get__(app), answer), settings)
    return app


class Api(FastAPI):
    """The FastAPI app with :class:`Guard` and :class:`PredictRoute` in front of it (``front``, set by :func:`create_app`)."""

    front: Callable[..., Awaitable[None]]

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Awaitable[dict[str, Any]]], send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] == "http":
            await self.front(scope, receive, send)
        else:  # lifespan (and anything else) as FastAPI handles it
            await super().__call__(scope, receive, send)


def _spool(upload: UploadFile) -> str:
    """The upload copied to a temporary file named like it (``.tsv``, ``.gz`` decide how it is read)."""
    name = (upload.filename or "upload.csv").lower()
    suffix = "".join(s for s in Path(name).suffixes[-2:] if s in (".csv", ".tsv", ".tab", ".txt", ".gz")) or ".csv"
    handle, path = tempfile.mkstemp(prefix="bpo-classify-upload-", suffix=suffix)
    with os.fdopen(handle, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
    return path


# -- running it ------------------------------------------------------------------------------
class JoinedWrites:
    """A connection's transport that holds what is written to it during one turn of the event loop
    and writes it in one go when the turn ends (or before the connection is closed).

    uvicorn writes an answer's status line and headers, then its body: two system calls, and on
    loopback two wake-ups of the client, per answer (a sixth of a worker's time, profiled). Joined,
    they are one. Everything else is the transport's own.
    """

    __slots__ = ("transport", "pending", "loop")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self.transport = transport
        self.pending: list[bytes] = []
        self.loop = loop

    def write(self, data: bytes) -> None:
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if self.pending:
            data = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
            self.pending = []
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.pending = []
        self.transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + sum(map(len, self.pending))

    def __getattr__(self, name: str) -> Any:  # pause_reading, is_closing, get_extra_info, ...
        return getattr(self.transport, name)


class JoinedWritesProtocol(HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's ``httptools`` HTTP/1.1 protocol, writing through :class:`JoinedWrites`
    (``http=`` of uvicorn's config, by import string: worker processes import it)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(JoinedWrites(transport, self.loop))  # type: ignore[arg-type]


#: uvicorn's ``http`` setting: the protocol above.
HTTP_PROTOCOL = f"{__name__}:JoinedWritesProtocol"
#: After it stops accepting connections, how long a stopping server keeps reading the requests
#: already sent on connections it had accepted, before it closes the idle ones.
DRAIN_SECONDS = 0.5
#: How long a stopping server keeps accepting, so connections made before the signal are not reset.
ACCEPT_SECONDS = 0.1


def run(settings: ServeSettings, model: Model, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop gracefully: no new connections, requests already sent answered.

    With ``workers`` > 1 the socket is bound here and shared by that many spawned
    processes, each building its own app (:func:`app_from_env`), so the model is loaded
    once per worker; SIGTERM to this process is passed on to each.
    """
    import uvicorn

    options: dict[str, Any] = dict(host=host, port=port, access_log=False, log_level="info", timeout_graceful_shutdown=30,
                                   http=HTTP_PROTOCOL)
    if workers == 1:
        _GracefulServer(uvicorn.Config(create_app(settings, model), **options)).run()
        return
    os.environ[SETTINGS_ENV] = settings.to_env()
    config = uvicorn.Config("bpo_classify.server:app_from_env", factory=True, workers=workers, **options)
    _supervise(config, workers)


def _graceful_server_class() -> type:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server, except that a stop lets the event loop catch up twice before it closes anything.

        uvicorn closes the listening socket and every connection without a request in progress at
        once; a connection still in the listen backlog, or one whose request has arrived but is not
        read yet (the loop was busy scoring), is then reset: a request the client had sent, lost. So
        the loop first accepts what is waiting (:data:`ACCEPT_SECONDS`), then stops accepting, reads
        the requests already sent (:data:`DRAIN_SECONDS`), and only then does uvicorn's shutdown.
        """

        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            await asyncio.sleep(ACCEPT_SECONDS)
            for server in self.servers:
                server.close()
            for sock in sockets or []:
                sock.close()
            await asyncio.sleep(DRAIN_SECONDS)
            await super().shutdown(sockets=None)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """uvicorn's, with SIGHUP (the terminal closed) and SIGQUIT stopping as gracefully as
            SIGTERM (unless ignored, as under nohup). Once stopped, each signal is raised again
            for the handler that was there before (the command's: exit 128 + the signal)."""
            import signal
            import threading

            if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
                yield
                return
            extra = [getattr(signal, n) for n in ("SIGHUP", "SIGQUIT") if hasattr(signal, n)]
            caught = [signal.SIGINT, signal.SIGTERM, *(s for s in extra if signal.getsignal(s) is not signal.SIG_IGN)]
            original = {sig: signal.signal(sig, self.handle_exit) for sig in caught}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)
            for sig in reversed(self._captured_signals):
                signal.raise_signal(sig)

    return GracefulServer


def _GracefulServer(config: Any) -> Any:  # noqa: N802  (a class made on first use: uvicorn is imported lazily)
    return _graceful_server_class()(config)


def log_to_stderr() -> None:
    """The request log (one line per request) on stderr, in this process and, called again there, in each worker."""
    import atexit
    import sys

    if not log.handlers:  # this logger only: uvicorn sets up its own (and its access log is off)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(message)s"))
        log.addHandler(handler)  # the errors (a crash's traceback); the request lines go straight to the stream
        log.setLevel(logging.INFO)
        log.propagate = False
    if request_log.stream is None:
        request_log.stream, request_log.prefix = sys.stderr, f" {os.getpid()} {log.name} "
        atexit.register(request_log.flush)


def _worker(config: Any, sock: Any) -> None:
    """One worker process: the graceful server on the shared socket."""
    log_to_stderr()  # a spawned process starts with no logging set up
    _GracefulServer(config).run(sockets=[sock])


def _supervise(config: Any, workers: int) -> None:
    """Start ``workers`` processes on one socket; on SIGTERM, SIGINT, SIGHUP or SIGQUIT, pass SIGTERM on
    and wait for each to finish (then SIGHUP and SIGQUIT are raised again for the command's handler)."""
    import multiprocessing
    import signal
    import threading

    sock = config.bind_socket()
    stop = threading.Event()
    received: list[int] = []

    def stopping(signum: int, frame: Any) -> None:
        received.append(signum)
        stop.set()

    extra = [getattr(signal, n) for n in ("SIGHUP", "SIGQUIT") if hasattr(signal, n)]
    caught = [signal.SIGTERM, signal.SIGINT, *(s for s in extra if signal.getsignal(s) is not signal.SIG_IGN)]
    original = {signum: signal.signal(signum, stopping) for signum in caught}
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(config, sock)) for _ in range(workers)]
    for process in processes:
        process.start()
    while not stop.wait(0.5):
        if all(not p.is_alive() for p in processes):
            break
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join()
    sock.close()
    for signum in (received[:1] if received and received[0] in extra else []):
        signal.signal(signum, original[signum])
        signal.raise_signal(signum)


def app_from_env() -> FastAPI:
    """The app a worker process builds (uvicorn's factory with ``--workers`` > 1), from :data:`SETTINGS_ENV`."""
    return create_app(ServeSettings(**json.loads(os.environ[SETTINGS_ENV])))
