"""`bpo-classify serve` under load, side by side with a naive FastAPI + scikit-learn service.

Both services run on 127.0.0.1 with the same number of uvicorn workers:

* ours: ``bpo-classify serve --workers N`` (``POST /v1/predict``);
* naive: the FastAPI app below (:func:`naive_app`): a scikit-learn ``TfidfVectorizer`` +
  two ``LogisticRegression`` (office, function) trained on the bundled corpus at start-up,
  ``predict_proba`` on every request, the answer returned as a dict for FastAPI to encode.

The load generator is ``wrk`` (Debian package ``wrk``; the script says so and stops if it
is missing), one thread, a fixed number of connections, bounded both ways: it stops after
a fixed number of answers or a fixed time, whichever comes first. Every request body is a
different one of 2,000 pre-built bodies whose texts are all distinct (``jobduties.duty_pool``),
so no cache is flattered by repeats. Shapes: one text per request, and 100 texts per
request, at rising concurrency. Then, at half of our highest single-text throughput
(paced by wrk's ``delay``), the p99 latency; with ``--soak SECONDS`` the same load for
that long, with the server's resident memory (all its processes) in the first and last
minute, and the errors.

Run: ``.venv/bin/python benchmarks/bench_serve.py`` (``--quick`` for a smoke run,
``--soak 180`` for the soak). Results also go to ``benchmarks/out/bench_serve.json``.
The machine is shared and has 2 cores, which wrk and both services share.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

import jobduties  # noqa: E402

#: wrk's Lua: rotate through the bodies in a file, stop after LIMIT answers, print a JSON summary.
WRK_SCRIPT = r"""
local bodies, i, answered, bad, limit, pause = {}, 0, 0, 0, 0, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  limit = tonumber(args[2]); pause = tonumber(args[3])
  i = math.random(#bodies)
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/predict", {["Content-Type"] = "application/json"}, bodies[i])
end
function delay() return pause end
function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then bad = bad + 1 end
  if answered >= limit then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "socket_errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


try:  # the request model at module level: FastAPI resolves the (string) annotation here
    from pydantic import BaseModel

    class Texts(BaseModel):
        texts: list[str]
except ImportError:  # pragma: no cover - main() says what is missing
    pass


# -- the naive service ----------------------------------------------------------------------------
def naive_app():  # type: ignore[no-untyped-def]
    """The naive service: what a first FastAPI wrapper around scikit-learn looks like (uvicorn factory)."""
    from fastapi import FastAPI
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from bpo_classify.corpus import load_labelled

    data = load_labelled()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    X = vectorizer.fit_transform(data.texts)
    office = LogisticRegression(max_iter=1000).fit(X, data.offices)
    function = LogisticRegression(max_iter=1000).fit(X, data.functions)
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(body: Texts) -> dict[str, Any]:
        features = vectorizer.transform(body.texts)
        p_office, p_function = office.predict_proba(features), function.predict_proba(features)
        return {"predictions": [
            {"office": str(office.classes_[po.argmax()]), "office_confidence": float(po.max()),
             "function": str(function.classes_[pf.argmax()]), "function_confidence": float(pf.max())}
            for po, pf in zip(p_office, p_function)
        ]}

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


# -- running things ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    """Start a service on a free loopback port; return it once /readyz answers."""
    port = free_port()
    if kind == "ours":
        command = [sys.executable, "-m", "bpo_classify", "serve", "--port", str(port), "--workers", str(workers)]
    else:
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "bench_serve:naive_app", "--factory",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(log, "wb"), cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{kind} service exited at start; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        raise SystemExit(f"{kind} service not ready after 180 s")
    time.sleep(1.0)  # every worker up, not just the first
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def rss_mb(proc: subprocess.Popen) -> float:
    """Resident memory of the service's process group (parent and workers), in MB."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != proc.pid:
                continue
            for line in open(f"/proc/{pid}/status", encoding="utf-8"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ProcessLookupError):
            continue
    return total / 1024


def wrk(url: str, bodies: Path, script: Path, connections: int, limit: int, seconds: float, pause_ms: int = 0) -> dict[str, Any]:
    """One bounded wrk run: at most ``limit`` answers and ``seconds`` seconds."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--timeout", "10s", "-s", str(script), url,
               "--", str(bodies), str(limit), str(pause_ms)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in done.stdout.splitlines() if l.startswith("WRK ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {done.stdout}\n{done.stderr}")
    result = json.loads(line[4:])
    result["rps"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
    return result


def write_bodies(path: Path, texts: list[str], per_request: int) -> Path:
    """2,000 request bodies (or as many as the texts allow), each with ``per_request`` texts, no text used twice."""
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, min(len(texts), 2000 * per_request) - per_request + 1, per_request):
            f.write(json.dumps({"texts": texts[start:start + per_request]}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke run")
    parser.add_argument("--soak", type=float, default=0, metavar="SECONDS", help="also hold half of our top load this long")
    parser.add_argument("--only", choices=["ours", "naive"], default=None)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench_serve needs wrk: apt-get install wrk")
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    script = work / "load.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    texts = [t for t, _ in jobduties.duty_pool(200_000, seed=7)]
    shapes = {"1 text": (write_bodies(work / "single.jsonl", texts, 1), 1),
              "100 texts": (write_bodies(work / "batch.jsonl", texts, 100), 100)}
    levels = [1, 4, 16] if args.quick else [1, 4, 16, 64]
    seconds = 3 if args.quick else 10
    limits = {"1 text": 2_000 if args.quick else 40_000, "100 texts": 200 if args.quick else 3_000}
    print(f"bench_serve: {args.workers} worker(s) each, wrk 1 thread, {os.cpu_count()} cores (shared machine), "
          f"Python {platform.python_version()}; each step stops after {seconds} s or its request count")
    results: dict[str, Any] = {"workers": args.workers, "steps": []}
    top: dict[str, float] = {}
    for kind in [k for k in ("ours", "naive") if args.only in (None, k)]:
        proc, url = start(kind, args.workers, work / f"{kind}.log")
        try:
            for shape, (bodies, _) in shapes.items():
                wrk(url, bodies, script, 4, 200, 2)  # warm-up
                for c in levels:
                    r = wrk(url, bodies, script, c, limits[shape], seconds)
                    results["steps"].append({"service": kind, "shape": shape, "connections": c, **r})
                    top[f"{kind} {shape}"] = max(top.get(f"{kind} {shape}", 0.0), r["rps"])
                    print(f"  {kind:<5} {shape:<9} c={c:<3} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
                          f"  errors {r['socket_errors'] + r['non_2xx']}", flush=True)
            if kind == "ours":
                results["half_load"] = half = paced(url, shapes["1 text"][0], script, top["ours 1 text"] / 2, 10 if not args.quick else 3)
                print(f"  ours  1 text at half our top single-text rate ({top['ours 1 text'] / 2:.0f} req/s asked, {half['rps']:.0f} done): "
                      f"p50 {half['p50_ms']:.2f} ms  p99 {half['p99_ms']:.2f} ms (goal < 25)", flush=True)
                if args.soak:
                    results["soak"] = soak(proc, url, shapes["1 text"][0], script, top["ours 1 text"] / 2, args.soak)
        finally:
            stop(proc)
    if "ours 1 text" in top and "naive 1 text" in top:
        for shape in shapes:
            ratio = top[f"ours {shape}"] / top[f"naive {shape}"]
            results[f"ratio {shape}"] = ratio
            print(f"top throughput, {shape}: ours {top[f'ours {shape}']:.0f} req/s, naive {top[f'naive {shape}']:.0f} req/s: "
                  f"{ratio:.1f}x" + (" (goal >= 3x)" if shape == "1 text" else ""))
    (OUT / "bench_serve.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


CONNECTIONS_PACED = 8


def paced(url: str, bodies: Path, script: Path, rate: float, seconds: float) -> dict[str, Any]:
    """About ``rate`` requests a second: each of 8 connections waits between requests (wrk's ``delay``)."""
    pause = max(0, int(CONNECTIONS_PACED * 1000 / rate))
    return wrk(url, bodies, script, CONNECTIONS_PACED, int(rate * seconds * 2), seconds, pause)


def soak(proc: subprocess.Popen, url: str, bodies: Path, script: Path, rate: float, seconds: float) -> dict[str, Any]:
    """Hold ``rate`` for ``seconds`` in 10-second runs; the RSS after each, errors summed."""
    samples: list[tuple[float, float]] = []
    errors = requests = 0
    p99s: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        r = paced(url, bodies, script, rate, 10)
        errors += r["socket_errors"] + r["non_2xx"]
        requests += r["requests"]
        p99s.append(r["p99_ms"])
        samples.append((time.monotonic() - started, rss_mb(proc)))
    first = [m for t, m in samples if t <= 60]
    last = [m for t, m in samples if t >= samples[-1][0] - 60]
    result = {"seconds": time.monotonic() - started, "requests": requests, "errors": errors, "worst_p99_ms": max(p99s),
              "rss_first_minute_mb": sum(first) / len(first), "rss_last_minute_mb": sum(last) / len(last), "samples": samples}
    print(f"  soak: {result['seconds']:.0f} s at ~{rate:.0f} req/s asked, {requests} requests ({requests / result['seconds']:.0f}/s), "
          f"{errors} errors, worst 10-s p99 {result['worst_p99_ms']:.2f} ms; RSS first minute {result['rss_first_minute_mb']:.1f} MB, "
          f"last minute {result['rss_last_minute_mb']:.1f} MB", flush=True)
    return result


if __name__ == "__main__":
    main()
