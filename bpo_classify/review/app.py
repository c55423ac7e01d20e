"""The review page's routes: static files and a JSON API over one :class:`~bpo_classify.corrections.ReviewSession`.

Routes (every answer is JSON except the page and its files):

- ``GET /``, ``GET /static/app.js``, ``GET /static/app.css``: the page;
- ``GET /api/state``: the queue, the policy's functions, progress;
- ``GET /api/items/<id>``: one item with the words that pushed it each way;
- ``POST /api/decisions`` ``{"id", "office", "function"}``: record a decision (on disk before the answer);
- ``POST /api/undo``: take back the latest decision.

Every error is ``{"error": {"status", "code", "message"}}`` with the HTTP status, from one
place (:meth:`Handler._fail`). The server binds 127.0.0.1 only, answers only requests whose
``Host`` is that address (or ``localhost``), and takes only ``application/json`` bodies, so
another web site open in the browser cannot post decisions.

Example:
    >>> import json, pathlib, tempfile, threading, urllib.request
    >>> from bpo_classify import load_model
    >>> from bpo_classify.corrections import ReviewSession
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "l.csv").write_text("text,office,function,needs_review\\nhandle refunds,front-office,customer_service,true\\n")
    >>> server = make_server(ReviewSession(d / "l.csv", d / "c.csv", load_model()), port=0)
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()
    >>> json.load(urllib.request.urlopen(server.url + "api/state"))["progress"]["todo"]
    1
    >>> server.shutdown(); server.server_close()
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from ..corrections import ReviewSession
from ..errors import BpoClassifyError, CorpusError

HOST = "127.0.0.1"
#: The page's files and their content types.
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
MAX_BODY = 64 * 1024


class ApiError(Exception):
    """An error answered as JSON: HTTP status, a stable code, a one-line message."""

    def __init__(self, status: HTTPStatus, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def static_file(name: str) -> bytes:
    """The bytes of one of the page's files (package data)."""
    return (resources.files("bpo_classify.review") / "static" / name).read_bytes()


class ReviewServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 holding one review session."""

    daemon_threads = True

    def __init__(self, session: ReviewSession, port: int):
        self.session = session
        super().__init__((HOST, port), Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"


def make_server(session: ReviewSession, port: int = 8765) -> ReviewServer:
    """The review server for ``session`` on 127.0.0.1:``port`` (0: any free port), bound but not yet serving.

    Raises :class:`~bpo_classify.errors.BpoClassifyError` when the port is taken.
    """
    try:
        return ReviewServer(session, port)
    except OSError as exc:
        raise PortError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}; choose another --port") from None


class PortError(BpoClassifyError):
    """The review server cannot listen on the port asked for."""


class Handler(BaseHTTPRequestHandler):
    """Routes one request; library errors become JSON errors in :meth:`_fail`."""

    server: ReviewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: the terminal shows the page's address, not every request

    # -- dispatch -------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        try:
            self._check_host()
            path = self.path.split("?", 1)[0]
            session = self.server.session
            if method == "GET" and path in ("/", "/index.html"):
                return self._send_file("index.html")
            if method == "GET" and path.startswith("/static/") and path[len("/static/"):] in STATIC:
                return self._send_file(path[len("/static/"):])
            if path == "/api/state":
                self._only(method, "GET")
                return self._send_json(session.state())
            item = re.fullmatch(r"/api/items/(\d+)", path)
            if item:
                self._only(method, "GET")
                return self._send_json(session.details(int(item.group(1))))
            if path == "/api/decisions":
                self._only(method, "POST")
                body = self._json_body()
                try:
                    id, office, function = int(body["id"]), str(body["office"]), str(body["function"])
                except (KeyError, TypeError, ValueError):
                    raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", "a decision is {\"id\": N, \"office\": ..., \"function\": ...}") from None
                return self._send_json(session.decide(id, office, function))
            if path == "/api/undo":
                self._only(method, "POST")
                self._json_body()
                return self._send_json(session.undo())
            raise ApiError(HTTPStatus.NOT_FOUND, "not_found", f"no such page: {path}")
        except ApiError as exc:
            self._fail(exc.status, exc.code, exc.message)
        except KeyError as exc:
            self._fail(HTTPStatus.NOT_FOUND, "not_found", str(exc.args[0]) if exc.args else "not found")
        except CorpusError as exc:
            self._fail(HTTPStatus.BAD_REQUEST, "invalid_decision", str(exc))
        except BpoClassifyError as exc:  # e.g. the corrections file cannot be written
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, "cannot_save", str(exc))
        except Exception as exc:  # noqa: BLE001 - a server answers every error with JSON
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", f"{type(exc).__name__}: {exc}")

    def _check_host(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in (HOST, "localhost"):
            raise ApiError(HTTPStatus.FORBIDDEN, "forbidden_host", f"this page answers on {HOST} only, not {host or 'no host'}")

    def _only(self, method: str, allowed: str) -> None:
        if method != allowed:
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", f"{self.path.split('?')[0]} takes {allowed}, not {method}")

    def _json_body(self) -> dict[str, Any]:
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the body as application/json")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", "Content-Length is not a number") from None
        if length > MAX_BODY:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", f"the body is over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", "the body must be a JSON object")
        return body

    # -- answers --------------------------------------------------------------------------
    def _send(self, status: HTTPStatus, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")  # a reload always shows what is on disk
        self.send_header("X-Content-Type-Options", "nosniff")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_file(self, name: str) -> None:
        self._send(HTTPStatus.OK, STATIC[name], static_file(name))

    def _send_json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, "application/json", json.dumps(value, allow_nan=False).encode("utf-8"))

    def _fail(self, status: HTTPStatus, code: str, message: str) -> None:
        self.close_connection = True  # an unread body must not be taken for the next request
        self._send_json({"error": {"status": int(status), "code": code, "message": message}}, status)
