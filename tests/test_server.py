"""`bpo-classify serve`'s API through the ASGI test client: every endpoint, every error, the token, the log.

Each answer is compared with what the library or the CLI gives for the same input, and
every error is checked for the one shape ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import gzip
import json
import logging

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from bpo_classify import reporting  # noqa: E402
from bpo_classify.cli import cli  # noqa: E402
from bpo_classify.cli_serve import read_token  # noqa: E402
from bpo_classify.labeling import label_csv  # noqa: E402
from bpo_classify.server import TOKEN_ENV, ServeSettings, create_app  # noqa: E402
from conftest import DUTIES, write_csv  # noqa: E402

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def client(model):
    """The app as `serve` starts it by default: no token, the default limits."""
    with TestClient(create_app(ServeSettings(), model)) as c:
        yield c


@pytest.fixture(scope="module")
def strict(model):
    """An app with a token and small limits: 3 texts, 200-byte JSON bodies, 2,000-byte uploads."""
    settings = ServeSettings(token=TOKEN, max_texts=3, max_body_bytes=200, max_upload_bytes=2000)
    with TestClient(create_app(settings, model), raise_server_exceptions=False) as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def error_of(response, status: int, code: str) -> str:
    """The message of an error answer, after checking its status, content type and the one shape every error has."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    return body["error"]["message"]


# -- /v1/predict ----------------------------------------------------------------------------
def test_predict_answers_as_the_library_does(client, model):
    """One result per text, in order, with the fields of `predict --format json` and the model version."""
    texts = ["process invoices", "answer live chat inquiries", "", "handle customer refunds"]
    response = client.post("/v1/predict", json={"texts": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == reporting.model_version(model)
    expected = [p.as_dict() for p in model.predict(texts, top_functions=3)]
    assert body["predictions"] == json.loads(json.dumps(expected))
    first = body["predictions"][0]
    assert (first["office"], first["function"], first["needs_review"]) == ("back-office", "finance_accounting", False)
    assert len(first["runners_up"]) == 2 and first["runners_up"][0]["confidence"] < first["function_confidence"]
    assert body["predictions"][2]["review_reason"] == "empty" and body["predictions"][2]["office"] is None


def test_predict_options(client, model):
    """threshold and top_functions reach Model.predict."""
    body = client.post("/v1/predict", json={"texts": ["answer calls"], "threshold": 1.0, "top_functions": 1}).json()
    (p,) = body["predictions"]
    assert p["runners_up"] == [] and p["needs_review"] is True and p["review_reason"] == "low_confidence"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("{", "the body is not valid JSON; send a JSON object such as"),
        ("[]", "the body must be a JSON object; send"),
        ('{"texts": "process invoices"}', "texts: Input should be a valid list; send"),
        ('{"texts": []}', "texts is empty; send"),
        ('{"texts": [1]}', "texts.0: Input should be a valid string; send"),
        ('{"text": ["a"]}', "texts: Field required; send"),
        ('{"texts": ["a"], "threshold": 2}', "threshold: Input should be less than or equal to 1; send"),
    ],
)
def test_predict_bad_bodies_say_what_to_send(client, body, expected):
    """Invalid JSON, a wrong type, an empty list: 422 with a message naming the problem and the body to send."""
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    message = error_of(response, 422, "invalid_request")
    assert message.startswith(expected), message
    assert message.endswith('"texts" a non-empty list of strings, optional "threshold" (0-1) and "top_functions" (1-15)')


FAST_AND_ROUTE_BODIES = [
    '{"texts": ["process invoices", "", "answer calls"], "top_functions": 2}', '{"texts": ["a"], "threshold": 0.99}',
    "{", "[]", "null", "", '{"texts": []}', '{"texts": [1]}', '{"texts": ["a"], "threshold": 2}', '{"texts": [null, "x"]}',
    '{"texts": ["\\ud800 lone surrogate"]}', '{"texts": ["a"], "threshold": NaN}', '\ufeff{"texts": ["bom"]}',
]


@pytest.mark.parametrize("body", FAST_AND_ROUTE_BODIES)
def test_fast_path_answers_as_the_route(client, body, monkeypatch):
    """A body sent as application/json (answered by PredictRoute) gets what FastAPI's route gives (another JSON type)."""
    from bpo_classify import server

    read = []
    monkeypatch.setattr(server, "_parsed", lambda b, real=server._parsed: read.append(b) or real(b))
    fast = client.post("/v1/predict", content=body.encode("utf-8"), headers={"content-type": "application/json; charset=utf-8"})
    route = client.post("/v1/predict", content=body.encode("utf-8"), headers={"content-type": "application/vnd.api+json"})
    assert (fast.status_code, fast.headers["content-type"], fast.json()) == (route.status_code, route.headers["content-type"], route.json())
    assert read == [body.encode("utf-8")]  # the first went through the fast path, the second did not


def test_a_lone_surrogate_is_echoed_as_an_escape(client):
    """A text with a lone surrogate (valid JSON escape, not UTF-8) is answered, the text escaped back."""
    response = client.post("/v1/predict", content=b'{"texts": ["\\ud800 process invoices"]}', headers={"content-type": "application/json"})
    assert response.status_code == 200 and b"\\ud800" in response.content
    assert response.json()["predictions"][0]["text"] == "\ud800 process invoices"


def test_prediction_as_dict_has_every_field(model):
    """Prediction.as_dict (written by hand for speed) names every field of the dataclass, in order."""
    from dataclasses import fields

    (p,) = model.predict(["process invoices"], top_functions=2)
    assert list(p.as_dict()) == [f.name for f in fields(p)]


def test_too_many_texts_names_the_limit(strict):
    """More texts than --max-texts: 422 saying how many were sent and the limit."""
    response = strict.post("/v1/predict", json={"texts": ["a", "b", "c", "d"]}, headers=AUTH)
    assert error_of(response, 422, "too_many_texts") == "4 texts sent; at most 3 per request: split the list"
    assert strict.post("/v1/predict", json={"texts": ["a", "b", "c"]}, headers=AUTH).status_code == 200


def test_body_over_the_limit_is_413(strict):
    """A body over --max-body is refused with 413, whether its length is declared or it arrives chunked."""
    big = json.dumps({"texts": ["x" * 300]})
    message = error_of(strict.post("/v1/predict", content=big, headers={**AUTH, "content-type": "application/json"}), 413, "body_too_large")
    assert "over the limit of 200 bytes" in message

    def chunks():  # no Content-Length: the body is counted as it arrives
        yield big[:150].encode()
        yield big[150:].encode()

    response = strict.post("/v1/predict", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert error_of(response, 413, "body_too_large") == message


# -- /v1/explain, /v1/model -------------------------------------------------------------------
def test_explain_is_the_cli_json(client, runner):
    """/v1/explain answers exactly what `explain --format json` prints."""
    text = "call customers to confirm their new address"
    response = client.post("/v1/explain", json={"text": text})
    assert response.status_code == 200
    printed = runner.invoke(cli, ["explain", text, "--format", "json"], catch_exceptions=False).output
    assert response.text == printed
    assert response.json()["terms"]


def test_explain_needs_a_text(client):
    """A body without a string text is a 422 saying what to send."""
    message = error_of(client.post("/v1/explain", json={"text": ["a"]}), 422, "invalid_request")
    assert message == 'text: Input should be a valid string; send a JSON object such as {"text": "process invoices"}: "text" a string, optional "threshold" (0-1)'


def test_model_is_the_cli_info_json(client, runner):
    """/v1/model answers exactly what `info --format json` prints."""
    response = client.get("/v1/model")
    assert response.status_code == 200
    assert response.text == runner.invoke(cli, ["info", "--format", "json"], catch_exceptions=False).output


# -- /v1/label --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, delimiter", [("duties.csv", ","), ("duties.tsv", "\t")])
def test_label_streams_the_file_label_writes(client, model, tmp_path, name, delimiter):
    """The upload comes back as `label` writes it: every row and column kept, the delimiter kept, the columns added."""
    rows = [["id", "duty"]] + [[str(i), d] for i, d in enumerate(DUTIES * 3)]
    source = write_csv(tmp_path / name, rows, delimiter)
    label_csv(source, tmp_path / f"expected_{name}", model=model)
    response = client.post("/v1/label", files={"file": (name, source.read_bytes())})
    assert response.status_code == 200
    assert response.content == (tmp_path / f"expected_{name}").read_bytes()
    assert response.headers["x-rows"] == str(len(rows) - 1)
    assert response.headers["content-type"].startswith("text/tab-separated-values" if delimiter == "\t" else "text/csv")


def test_label_options_and_gzip(client, tmp_path):
    """text_column and prefix are form fields; a .gz upload is read as gzip."""
    data = "duty,notes\nprocess invoices,answer calls\n".encode()
    response = client.post("/v1/label", files={"file": ("d.csv.gz", gzip.compress(data))}, data={"text_column": "notes", "prefix": "bpo_"})
    assert response.status_code == 200
    header, row = response.text.splitlines()
    assert header.startswith("duty,notes,bpo_office,") and row.startswith("process invoices,answer calls,front-office,")


def test_label_top_functions_adds_the_runner_up_columns_label_writes(client, model, tmp_path):
    """The top_functions form field adds function_2 ... as `label --top-functions` does, byte for byte."""
    source = write_csv(tmp_path / "d.csv", [["id", "duty"]] + [[str(i), d] for i, d in enumerate(DUTIES)])
    label_csv(source, tmp_path / "expected.csv", model=model, top_functions=3)
    response = client.post("/v1/label", files={"file": ("d.csv", source.read_bytes())}, data={"top_functions": "3"})
    assert response.status_code == 200
    assert response.content == (tmp_path / "expected.csv").read_bytes()
    assert response.text.splitlines()[0].endswith(",function_2,function_2_confidence,function_3,function_3_confidence")
    assert error_of(client.post("/v1/label", files={"file": ("d.csv", source.read_bytes())}, data={"top_functions": "16"}), 422, "invalid_request")


@pytest.mark.parametrize(
    "content, form, message",
    [
        (b"role,x\nClerk,process invoices\n", {}, "no column is obviously the text; columns: role, x; name one with the text_column field"),
        (b"role,duty\nClerk,process invoices\n", {"text_column": "task"}, "column 'task' not found in d.csv; available: role, duty; use the text_column field"),
        (b"duty\nok\n" * 3000 + b"\xff\n", {}, "d.csv is not valid utf-8 after data row 5119 (byte b'\\xff'); try the form field encoding=latin-1 or cp1252"),
        (b"a,duty\n1,x\n" * 3 + b"1,2,3\n", {}, "data row 6 has 3 fields but the header has 2; check the delimiter or quoting of that row"),
        (b"", {}, "d.csv is empty: expected a header row with column names"),
    ],
)
def test_label_bad_files_are_422_before_anything_is_sent(client, content, form, message):
    """A problem anywhere in the file (its header, a late row) is a JSON error, not a cut-off stream."""
    response = client.post("/v1/label", files={"file": ("d.csv", content)}, data=form)
    assert error_of(response, 422, "invalid_input") == message


def test_label_needs_a_file(client):
    """No file field: 422 saying how to send one."""
    message = error_of(client.post("/v1/label", data={"prefix": "x"}), 422, "invalid_request")
    assert message == 'file: Field required; send a multipart form with the CSV or TSV as field "file" (curl -F file=@duties.csv), optional fields "text_column", "prefix", "threshold", "top_functions" (1-15) and "encoding"'


def test_label_upload_over_its_limit_is_413(strict):
    """An upload over --max-upload is refused."""
    response = strict.post("/v1/label", files={"file": ("d.csv", b"duty\n" + b"process invoices\n" * 200)}, headers=AUTH)
    assert "over the limit of 2,000 bytes" in error_of(response, 413, "body_too_large")


# -- health, docs, routing --------------------------------------------------------------------
def test_health_and_docs(client, model):
    """/healthz, /readyz (with the model version) and the OpenAPI docs listing every endpoint."""
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model_version": reporting.model_version(model)}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/explain", "/v1/label", "/v1/model", "/healthz", "/readyz"} <= set(paths)


def test_unknown_path_and_method(client):
    """404 and 405 have the same error shape."""
    assert error_of(client.get("/v2/predict"), 404, "not_found") == "no such endpoint: /v2/predict; see /docs"
    assert error_of(client.get("/v1/predict"), 405, "method_not_allowed") == "GET is not allowed on /v1/predict; see /docs"


def test_a_crash_is_a_json_500_without_a_traceback(model, monkeypatch, caplog):
    """A handler that raises: the client gets the error shape and no detail; the log gets the traceback."""
    app = create_app(ServeSettings(), model)
    monkeypatch.setattr(model, "predict_columns", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("secret internals")))
    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.INFO, "bpo_classify.server"):
        response = c.post("/v1/predict", json={"texts": ["process invoices"]})
    message = error_of(response, 500, "internal_error")
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert message == "the server failed to answer this request; it has been logged"
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


# -- the token --------------------------------------------------------------------------------
def test_token_required_except_health_checks(strict):
    """With a token, every endpoint but /healthz and /readyz answers 401 without it, or with a wrong one."""
    assert strict.get("/healthz").status_code == 200 and strict.get("/readyz").status_code == 200
    for method, path in [("post", "/v1/predict"), ("post", "/v1/explain"), ("post", "/v1/label"), ("get", "/v1/model"), ("get", "/docs"), ("get", "/openapi.json")]:
        response = getattr(strict, method)(path)
        assert error_of(response, 401, "unauthorized") == "bearer token missing; send the header 'Authorization: Bearer <token>'", path
        assert response.headers["www-authenticate"] == "Bearer"
        wrong = getattr(strict, method)(path, headers={"Authorization": "Bearer guess"})
        assert "not the expected token" in error_of(wrong, 401, "unauthorized")
    assert strict.get("/v1/model", headers=AUTH).status_code == 200
    assert strict.post("/v1/predict", json={"texts": ["process invoices"]}, headers=AUTH).status_code == 200


def test_read_token(tmp_path, monkeypatch):
    """--token-file wins over the environment variable; an empty file is an error."""
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert read_token(None) == "from-env"
    (tmp_path / "t").write_text("from-file\n", encoding="utf-8")
    assert read_token(tmp_path / "t") == "from-file"
    (tmp_path / "e").write_text("\n", encoding="utf-8")
    with pytest.raises(Exception, match="the token file .* is empty; put the token on its first line"):
        read_token(tmp_path / "e")
    monkeypatch.delenv(TOKEN_ENV)
    assert read_token(None) is None


# -- the log ----------------------------------------------------------------------------------
def test_one_log_line_per_request_without_the_texts(client, caplog):
    """Method, path, status, milliseconds and the number of texts; never a text."""
    with caplog.at_level(logging.INFO, "bpo_classify.server"):
        client.post("/v1/predict", json={"texts": ["confidential merger memo", "process invoices"]})
        client.post("/v1/predict", json={"texts": []})
        client.get("/healthz")
    lines = [r.getMessage() for r in caplog.records if r.name == "bpo_classify.server"]
    assert len(lines) == 3
    assert lines[0].startswith("POST /v1/predict 200 ") and lines[0].endswith("ms texts=2")
    assert lines[1].startswith("POST /v1/predict 422 ") and lines[1].endswith("texts=0")
    assert lines[2].startswith("GET /healthz 200 ") and lines[2].endswith("texts=-")
    assert not any("merger" in line or "invoices" in line for line in lines)


def test_serve_writes_the_log_lines_itself(client, monkeypatch):
    """As `serve` logs (a stream set): the same lines, with time and pid, written by turn of the event loop."""
    import io
    import os
    import re

    from bpo_classify import server

    stream = io.StringIO()
    monkeypatch.setattr(server.request_log, "stream", stream)
    writes = []
    real_write = stream.write
    monkeypatch.setattr(stream, "write", lambda text: writes.append(text) or real_write(text))
    client.post("/v1/predict", json={"texts": ["confidential merger memo", "process invoices"]})
    client.post("/v1/predict", json={"texts": []})
    client.get("/healthz")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and len(writes) == 3  # one turn per request here: one write each
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} %d bpo_classify\.server " % os.getpid()
    assert all(re.match(pattern, line) for line in lines), lines
    assert re.search(r"POST /v1/predict 200 \d+\.\dms texts=2$", lines[0])
    assert lines[1].endswith("texts=0") and " 422 " in lines[1] and re.search(r"GET /healthz 200 .*texts=-$", lines[2])
    assert not any("merger" in line or "invoices" in line for line in lines)


def test_request_lines_of_one_turn_are_one_write():
    """Lines logged in the same turn of the event loop go out in one write, in order, when the turn ends."""
    import asyncio
    import io

    from bpo_classify.server import RequestLog

    stream = io.StringIO()
    out = RequestLog(stream)
    writes = []
    stream.write = lambda text: writes.append(text) or len(text)  # type: ignore[method-assign]

    async def requests():
        for i in range(50):
            out.line(f"GET /healthz 200 0.{i}ms texts=-")
        assert writes == []
        await asyncio.sleep(0)
        out.line("GET /readyz 200 0.1ms texts=-")
        await asyncio.sleep(0)

    asyncio.run(requests())
    assert len(writes) == 2 and writes[0].count("\n") == 50 and writes[1].count("\n") == 1
    assert [line.rsplit(" ", 2)[1] for line in writes[0].splitlines()] == [f"0.{i}ms" for i in range(50)]


def test_serve_with_a_bad_model_is_one_line(runner, tmp_path):
    """A model file that is not one stops `serve` before it listens, with the CLI's one-line error."""
    (tmp_path / "bad.bpoc").write_bytes(b"not a model")
    result = runner.invoke(cli, ["serve", "--model", str(tmp_path / "bad.bpoc"), "--port", "0"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1


def test_requests_arriving_together_are_scored_together(model, monkeypatch):
    """The batcher answers each request as Model.predict would alone (as dicts), in fewer calls, options kept apart."""
    import asyncio

    from bpo_classify.server import BATCH_TEXTS, Batcher

    requests = [([f"process invoice {i} for vendor accounts"], None, 3) for i in range(10)]
    requests += [(["answer calls", ""], 1.0, 1), (["x"] * (BATCH_TEXTS + 1), None, 2)]  # other options; one too big to batch
    expected = [[p.as_dict() for p in model.predict(t, th, k)] for t, th, k in requests]
    calls = []
    real = model.predict_dicts
    monkeypatch.setattr(model, "predict_dicts", lambda *a: calls.append(len(a[0])) or real(*a))

    async def all_at_once():
        batcher = Batcher(model)
        return await asyncio.gather(*(batcher.predict(t, th, k) for t, th, k in requests))

    assert asyncio.run(all_at_once()) == expected
    assert sorted(calls) == [2, 10, BATCH_TEXTS + 1]


def test_a_crash_in_a_fastapi_route_is_logged_once(model, monkeypatch, caplog):
    """A route behind the fast path (explain) that raises: one JSON 500, one logged traceback."""
    app = create_app(ServeSettings(), model)
    monkeypatch.setattr("bpo_classify.server.explain_text", lambda *a: (_ for _ in ()).throw(RuntimeError("secret internals")))
    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.INFO, "bpo_classify.server"):
        response = c.post("/v1/explain", json={"text": "process invoices"})
    assert error_of(response, 500, "internal_error") == "the server failed to answer this request; it has been logged"
    assert sum(1 for r in caplog.records if r.exc_info) == 1


def test_joined_writes_one_write_per_turn_and_nothing_lost_at_close():
    """What is written in one turn of the event loop goes out in one write; close and write_eof send what is held first."""
    import asyncio

    from bpo_classify.server import JoinedWrites

    class Transport:
        def __init__(self):
            self.events = []

        def write(self, data):
            self.events.append(("write", data))

        def close(self):
            self.events.append(("close",))

        def write_eof(self):
            self.events.append(("eof",))

        def is_closing(self):
            return ("close",) in self.events

        def get_write_buffer_size(self):
            return 0

        def get_extra_info(self, name, default=None):
            return ("127.0.0.1", 1) if name == "peername" else default

    async def run():
        t = Transport()
        joined = JoinedWrites(t, asyncio.get_running_loop())
        joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
        joined.write(b"body")
        assert t.events == [] and joined.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
        await asyncio.sleep(0)
        assert t.events == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody")]
        joined.write(b"last")
        joined.write_eof()
        joined.write(b"closing")
        joined.close()
        await asyncio.sleep(0)
        assert t.events[1:] == [("write", b"last"), ("eof",), ("write", b"closing"), ("close",)]
        assert joined.get_extra_info("peername") == ("127.0.0.1", 1)

    asyncio.run(run())
