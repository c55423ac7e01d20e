"""`bpo-classify serve` stops gracefully on SIGTERM: requests in flight finish, new ones are refused.

The real server in a child process on 127.0.0.1, four clients sending 100-text batches
back to back (a new connection each), and SIGTERM in the middle of the stream.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import threading
import time
from typing import Iterator

import pytest

from conftest import start_cli

httpx = pytest.importorskip("httpx2", reason="the dev extra (httpx2) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

# Starts a server process and signals it (`make test-fast` leaves it out).
pytestmark = pytest.mark.slow

CLIENTS = 4
TEXTS = [f"reconcile vendor statement {i} and post the journal entries" for i in range(100)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited before it was ready"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"server not ready after {seconds} s")


def test_sigterm_loses_no_accepted_request(tmp_path):
    """Every request sent before SIGTERM gets its full answer; after it, a request is answered or refused, never cut off.

    The server keeps accepting for a moment after the signal and reads what was already
    sent before it closes connections (``server.ACCEPT_SECONDS``, ``DRAIN_SECONDS``); without
    that, uvicorn resets connections whose request it had not read yet and this test fails.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = open(tmp_path / "serve.log", "wb")  # a file, not a pipe: a full pipe would stall the server
    proc = start_cli("serve", "--port", port, cwd=tmp_path, stderr=log_file)
    try:
        wait_until_up(url, proc)
        results: list[tuple[float, float, str]] = []
        lock = threading.Lock()

        def client() -> None:
            # No keep-alive: each request is a new connection, so "refused" is unambiguous.
            with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=60) as c:
                for _ in range(10_000):  # bounded; in practice the server stops it within seconds
                    started = time.monotonic()
                    try:
                        r = c.post(url + "/v1/predict", json={"texts": TEXTS})
                        ok = r.status_code == 200 and len(r.json()["predictions"]) == len(TEXTS)
                        outcome = "ok" if ok else f"status {r.status_code}"
                    except httpx.ConnectError:
                        outcome = "refused"
                    except httpx.RemoteProtocolError as exc:
                        # Closed before the server read the request: refused; closed mid-answer: lost.
                        outcome = "refused" if "without sending a response" in str(exc) else f"lost: {exc}"
                    except httpx.ReadError as exc:
                        # A reset with no byte of an answer: the connection was still in the kernel's
                        # backlog when the listening socket closed; the server never read it.
                        outcome = "reset" if "reset by peer" in str(exc) else f"lost: {exc}"
                    except httpx.HTTPError as exc:
                        outcome = f"lost: {type(exc).__name__}: {exc}"
                    with lock:
                        results.append((started, time.monotonic(), outcome))
                    if outcome in ("refused", "reset"):
                        return

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(o == "ok" for *_, o in results) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        terminated = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=60)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log_file.close()
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")

    before = [o for s, _, o in results if s < terminated]
    in_flight = [o for s, f, o in results if s < terminated < f]
    after = [o for s, _, o in results if s >= terminated]
    assert len(before) >= 40 and in_flight, "SIGTERM did not land during the stream"
    assert before == ["ok"] * len(before), [o for o in before if o != "ok"]
    # After it: answered in full, or refused (or reset before it was read); never an error or a cut-off answer.
    assert all(o in ("ok", "refused", "reset") for o in after), [o for o in after if o not in ("ok", "refused", "reset")]
    assert len([o for o in after if o != "ok"]) == CLIENTS, "each client's last request is refused"
    assert code == 0, log
    # The server answered exactly the requests the clients received: none completed and dropped.
    served = len(re.findall(r"POST /v1/predict 200 .*texts=100", log))
    assert served == [o for *_, o in results].count("ok")
    assert "Traceback" not in log


@contextlib.contextmanager
def serving(tmp_path, *options: object, **popen) -> Iterator[tuple[subprocess.Popen, str]]:
    """`bpo-classify serve` on a free port, ready: the process and its URL; killed at the end if still running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_cli("serve", "--port", port, *options, cwd=tmp_path, **popen)
    try:
        wait_until_up(url, proc)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("signum, code", [(signal.SIGHUP, 129), (signal.SIGQUIT, 131)])
def test_sighup_and_sigquit_stop_the_server_in_its_own_words(tmp_path, signum, code):
    """The terminal closed (SIGHUP) or Ctrl-\\ (SIGQUIT): the server stops with 128 + the signal and
    says "server stopped (SIGHUP)", not the labeller's "no output was written"."""
    with serving(tmp_path, stderr=subprocess.PIPE) as (proc, url):
        assert httpx.post(url + "/v1/predict", json={"texts": ["process invoices"]}, timeout=30).status_code == 200
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    log = err.decode()
    assert proc.returncode == code, log
    assert f"server stopped ({signal.Signals(signum).name})\n" in log, log
    assert "no output was written" not in log and "Traceback" not in log, log


def test_sighup_stops_every_worker_of_a_multi_worker_server(tmp_path):
    """With --workers 2, SIGHUP to the server stops its workers too (none is left holding the port)."""
    import psutil

    with serving(tmp_path, "--workers", "2", stderr=subprocess.PIPE) as (proc, _):
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers
        proc.send_signal(signal.SIGHUP)
        _, err = proc.communicate(timeout=60)
    log = err.decode()
    assert proc.returncode == 129 and "server stopped (SIGHUP)\n" in log and "Traceback" not in log, log
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, alive
