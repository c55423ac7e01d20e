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


def group_pids(proc: subprocess.Popen) -> list[int]:
    """The pids of the service's process group (the supervisor and its workers), as /proc lists them now."""
    pids = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.getpgid(int(pid)) == proc.pid:
                pids.append(int(pid))
        except (OSError, ProcessLookupError):
            continue
    return pids


def rss_mb(proc: subprocess.Popen) -> dict[int, float]:
    """Resident memory of each process of the service's process group (the supervisor and its workers), in MB."""
    sizes: dict[int, float] = {}
    for pid in group_pids(proc):
        try:
            for line in open(f"/proc/{pid}/status", encoding="utf-8"):
                if line.startswith("VmRSS:"):
                    sizes[int(pid)] = int(line.split()[1]) / 1024
        except (OSError, ProcessLookupError):
            continue
    return sizes


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


def write_bodies(path: Path, texts: list[str], per_request: int, count: int) -> Path:
    """``count`` request bodies (or as many as the texts allow), each with ``per_request`` texts, no text used twice."""
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, min(len(texts), count * per_request) - per_request + 1, per_request):
            f.write(json.dumps({"texts": texts[start:start + per_request]}) + "\n")
    return path


def cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time (user + system) used so far by the service's processes: what a request costs, however busy the machine."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in group_pids(proc):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
        except (OSError, ProcessLookupError, IndexError):
            continue
    return total / tick


def load_average() -> float:
    """The 1-minute load average (the machine is shared: every step says how busy it was)."""
    return os.getloadavg()[0]


def step(service: tuple[subprocess.Popen, str], bodies: Path, script: Path, connections: int, limit: int, seconds: float,
         pause_ms: int = 0) -> dict[str, Any]:
    """One wrk run, with the load average before and after it and the service's CPU milliseconds per answer."""
    proc, url = service
    before, cpu = load_average(), cpu_seconds(proc)
    result = wrk(url, bodies, script, connections, limit, seconds, pause_ms)
    cpu_ms = (cpu_seconds(proc) - cpu) * 1000 / max(1, result["requests"])
    return {**result, "cpu_ms_per_request": cpu_ms, "load_before": before, "load_after": load_average()}


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
    texts = [t for t, _ in jobduties.duty_pool(400_000, seed=7)]
    # Single texts: 100,000 bodies, and 4,000 bodies of 100 texts: a 10-s step at the rates seen here
    # (up to ~6,000 and ~400 req/s) meets each text once or barely twice; the soak cycles through them.
    shapes = {"1 text": write_bodies(work / "single.jsonl", texts, 1, 100_000),
              "100 texts": write_bodies(work / "batch.jsonl", texts, 100, 4_000)}
    levels = [1, 4, 16] if args.quick else [1, 4, 16, 64]
    seconds = 3 if args.quick else 10
    # The count only bounds a run that would go on too long: wrk's thread stops at it but wrk still
    # reports the whole -d duration, so a step that reaches its count reads as count / seconds, a cap.
    # Far above what 10 s can reach here; a step that reaches it anyway is marked "capped".
    limits = {"1 text": 2_000 if args.quick else 400_000, "100 texts": 200 if args.quick else 40_000}
    kinds = [k for k in ("ours", "naive") if args.only in (None, k)]
    print(f"bench_serve: {args.workers} worker(s) each, wrk 1 thread, {os.cpu_count()} cores (shared machine), "
          f"Python {platform.python_version()}; each step stops after {seconds} s or its request count; "
          f"ours and naive run turn about, step by step, so both meet the same background load", flush=True)
    results: dict[str, Any] = {"workers": args.workers, "steps": []}
    top: dict[str, float] = {}
    services: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for kind in kinds:
            services[kind] = start(kind, args.workers, work / f"{kind}.log")
        for shape, bodies in shapes.items():
            for kind in kinds:
                wrk(services[kind][1], bodies, script, 4, 400 if shape == "1 text" else 100, 3)  # warm-up
            for c in levels:
                for kind in kinds:
                    r = step(services[kind], bodies, script, c, limits[shape], seconds)
                    results["steps"].append({"service": kind, "shape": shape, "connections": c, **r})
                    top[f"{kind} {shape}"] = max(top.get(f"{kind} {shape}", 0.0), r["rps"])
                    print(f"  {kind:<5} {shape:<9} c={c:<3} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:8.2f} ms"
                          f"  cpu {r['cpu_ms_per_request']:6.2f} ms/req  errors {r['socket_errors'] + r['non_2xx']}  load {r['load_before']:.1f}"
                          f"{'  capped (reached its request count)' if r['requests'] >= limits[shape] else ''}", flush=True)
        if "ours" in services:
            rate = top["ours 1 text"] / 2
            results["half_load"] = {}
            connections = None  # found on ours (the first kind), then the same load is asked of naive
            for kind in kinds:  # naive at our half rate too: how the machine's noise alone shows in a p99
                if connections is None:
                    connections = pace(services[kind], shapes["1 text"], script, rate)
                half = paced(services[kind], shapes["1 text"], script, rate, 10 if not args.quick else 3, connections)
                results["half_load"][kind] = half
                print(f"  {kind:<5} 1 text at half our top single-text rate ({rate:.0f} req/s asked, {half['rps']:.0f} done, "
                      f"{connections} connections): "
                      f"p50 {half['p50_ms']:.2f} ms  p99 {half['p99_ms']:.2f} ms" + (" (goal < 25)" if kind == "ours" else "")
                      + f"  cpu {half['cpu_ms_per_request']:.2f} ms/req  load {half['load_before']:.1f}", flush=True)
            if args.soak:
                soak_bodies = write_bodies(work / "soak.jsonl", texts, 1, len(texts))
                results["soak"] = soak(services["ours"], soak_bodies, script, rate, args.soak, connections or 32)
    finally:
        for proc, _ in services.values():
            stop(proc)
    if "ours 1 text" in top and "naive 1 text" in top:
        for shape in shapes:
            ratio = top[f"ours {shape}"] / top[f"naive {shape}"]
            results[f"ratio {shape}"] = ratio
            print(f"top throughput, {shape}: ours {top[f'ours {shape}']:.0f} req/s, naive {top[f'naive {shape}']:.0f} req/s: "
                  f"{ratio:.1f}x" + (" (goal >= 3x)" if shape == "1 text" else " (goal >= 1x)"))
    (OUT / "bench_serve.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


#: Each connection of a paced run waits this long between requests, so the few milliseconds an answer
#: takes barely lower the rate (32 connections at 2,000 req/s would pause 16 ms: a 3-ms answer alone costs 16 % of it).
PAUSE_MS = 50


def paced(service: tuple[subprocess.Popen, str], bodies: Path, script: Path, rate: float, seconds: float,
          connections: int) -> dict[str, Any]:
    """``rate`` requests a second asked: ``connections``, each waiting ``connections / rate`` seconds between
    requests (wrk's ``delay``); the result's ``rps`` says what was reached."""
    pause = max(0, round(connections * 1000 / rate))
    return step(service, bodies, script, connections, int(rate * seconds * 2), seconds, pause)


def pace(service: tuple[subprocess.Popen, str], bodies: Path, script: Path, rate: float) -> int:
    """Connections that reach ``rate`` (within 5 %): ``rate`` / 20 to start (a :data:`PAUSE_MS` pause each),
    then more, in proportion to the rate missed, for up to three 5-s tries (an answer's time adds to each pause)."""
    connections = max(32, round(rate * PAUSE_MS / 1000))
    for _ in range(3):
        reached = paced(service, bodies, script, rate, 5, connections)["rps"]
        if reached >= 0.95 * rate:
            break
        connections = round(connections * rate / max(reached, 1.0) * 1.02)
    return connections


def soak(service: tuple[subprocess.Popen, str], bodies: Path, script: Path, rate: float, seconds: float,
         connections: int) -> dict[str, Any]:
    """Hold ``rate`` for ``seconds`` in 10-second runs; every process's RSS after each, errors summed.

    Reported: the mean total RSS (supervisor and workers) of the samples in the first and in the
    last minute, and the largest worker's in each.
    """
    samples: list[dict[str, Any]] = []
    errors = requests = 0
    proc = service[0]
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        r = paced(service, bodies, script, rate, 10, connections)
        errors += r["socket_errors"] + r["non_2xx"]
        requests += r["requests"]
        sizes = rss_mb(proc)
        samples.append({"t": time.monotonic() - started, "rss_mb": sizes, "total_mb": sum(sizes.values()),
                        "largest_worker_mb": max(v for k, v in sizes.items() if k != proc.pid), "p99_ms": r["p99_ms"],
                        "rps": r["rps"], "load": r["load_before"]})
    elapsed = time.monotonic() - started
    first = [x for x in samples if x["t"] <= 60]
    last = [x for x in samples if x["t"] >= samples[-1]["t"] - 60]

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        return sum(x[key] for x in rows) / len(rows)

    p99s = sorted(x["p99_ms"] for x in samples)
    result = {"seconds": elapsed, "requests": requests, "errors": errors, "rate_asked": rate,
              "median_p99_ms": p99s[len(p99s) // 2], "worst_p99_ms": p99s[-1],
              "rss_first_minute_mb": mean(first, "total_mb"), "rss_last_minute_mb": mean(last, "total_mb"),
              "worker_first_minute_mb": mean(first, "largest_worker_mb"), "worker_last_minute_mb": mean(last, "largest_worker_mb"),
              "samples": samples}
    print(f"  soak: {elapsed:.0f} s at ~{rate:.0f} req/s asked, {requests} requests ({requests / elapsed:.0f}/s), {errors} errors; "
          f"p99 of the 10-s runs: median {result['median_p99_ms']:.2f} ms, worst {result['worst_p99_ms']:.2f} ms; "
          f"RSS (all processes) first minute {result['rss_first_minute_mb']:.1f} MB, last minute {result['rss_last_minute_mb']:.1f} MB; "
          f"largest worker {result['worker_first_minute_mb']:.1f} -> {result['worker_last_minute_mb']:.1f} MB; "
          f"load {min(x['load'] for x in samples):.1f}-{max(x['load'] for x in samples):.1f}", flush=True)
    return result


if __name__ == "__main__":
    main()
