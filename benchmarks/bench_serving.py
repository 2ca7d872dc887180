"""Real-time scoring latency: one debtor per request, in-process and over HTTP, beside LightGBM.

Prints figures, never pass/fail. A model is trained on synthetic rows, registered in a
throwaway SQLite store and loaded as MLflow loads it (``mlflow.pyfunc.load_model``: the
models-from-code pyfunc, the same ``Scorer.score_batch`` as batch scoring). Requests carry one
portfolio row as a JSON request delivers it (dates and flags as text). Measured:

- in-process ``predict`` on one row, without and with explanations (p50/p95/p99), and the
  contract's validation of that row alone;
- the baseline: plain LightGBM ``Booster.predict`` on one prepared row (one thread);
- over HTTP: ``mlflow models serve`` on a loopback port with ``-w`` workers, persistent
  connections, one client after another (sequential) and ``--clients`` at once (concurrent).

Every loop is bounded (``--requests`` per measurement, ``--timeout`` seconds per server) and
only 127.0.0.1 is contacted; the servers are stopped at the end.

    .venv/bin/python benchmarks/bench_serving.py [--train-rows 100000] [--requests 400]
        [--workers 1 2] [--clients 4] [--skip-http]

Targets (issue 17): in-process p50 <= 10 ms without explanations and <= 20 ms with them;
served p50 within 5 ms of in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recoverscore.data.schemas import Portfolio
from recoverscore.data.synthetic import generate_frame
from recoverscore.modelling.model import load_train_config
from recoverscore.scoring.package import ModelPackage

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"  # loopback only


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  p99 {p99:6.2f} ms"


def request_rows(rows: int) -> list[dict]:
    """One-row request bodies (``dataframe_split``) as a case-management system sends them."""
    frame = generate_frame(rows, seed=77, as_of="2026-06-30")[list(Portfolio.to_schema().columns)]
    split = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    dates = ("as_of", "due_date", "last_payment_date", "last_acknowledgment_date")
    dated = [split["columns"].index(c) for c in dates]
    bodies = []
    for row in split["data"]:
        for i in dated:
            row[i] = row[i][:10] if row[i] else None
        bodies.append({"columns": split["columns"], "data": [row]})
    return bodies


def in_process(model_uri: str, bodies: list[dict], requests: int) -> dict[bool, list[float]]:
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri)
    frames = [pd.DataFrame(b["data"], columns=b["columns"]) for b in bodies]
    times: dict[bool, list[float]] = {}
    for explain in (False, True):
        params = {"explain": explain}
        for frame in frames[:20]:  # warm-up: imports, caches
            model.predict(frame, params=params)
        runs = []
        for i in range(requests):
            start = time.perf_counter()
            model.predict(frames[i % len(frames)], params=params)
            runs.append(time.perf_counter() - start)
        times[explain] = runs
    return times


def validation_one_row(package: ModelPackage, bodies: list[dict], requests: int) -> list[float]:
    """The input contract's checks on one request's row, typed frame included (a stage of
    ``predict`` above)."""
    frames = [pd.DataFrame(b["data"], columns=b["columns"]) for b in bodies]
    for frame in frames[:20]:
        package.contract.validate(frame)
    runs = []
    for i in range(requests):
        start = time.perf_counter()
        package.contract.validate(frames[i % len(frames)])
        runs.append(time.perf_counter() - start)
    return runs


def lightgbm_one_row(package: ModelPackage, requests: int) -> list[float]:
    model = package.model
    frame = generate_frame(50, seed=78, as_of="2026-06-30")
    matrix = model._as_matrix(model._design(frame, "mediation", model.features_.transform(frame)))
    runs = []
    for i in range(requests):
        row = matrix[i % len(matrix)][None, :]
        start = time.perf_counter()
        model.booster_.predict(row, num_iteration=model.best_iteration_, num_threads=1)
        runs.append(time.perf_counter() - start)
    return runs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(model_uri: str, env: dict[str, str], workers: int, timeout: float, log: Path):
    """``mlflow models serve`` on a free loopback port; its process group ended afterwards."""
    port = free_port()
    command = [str(BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager",
               "local", "-h", HOST, "-p", str(port), "-w", str(workers)]  # fmt: skip
    with log.open("ab") as out:
        server = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection(HOST, port, timeout=5)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    break
            if server.poll() is not None:
                raise RuntimeError(f"mlflow models serve died:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        else:
            raise RuntimeError(f"no answer from the server in {timeout:.0f} s")
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def client_loop(port: int, payloads: list[bytes], count: int, out: list[float]) -> None:
    """``count`` requests on one persistent connection; each answer must be 200."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    for i in range(count):
        start = time.perf_counter()
        connection.request("POST", "/invocations", payloads[i % len(payloads)], headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:300]!r}")
        out.append(time.perf_counter() - start)
    connection.close()


def over_http(port: int, bodies: list[dict], requests: int, clients: int) -> tuple:
    """Latencies and requests/s with ``clients`` concurrent connections (``requests`` in all)."""
    results = {}
    for explain in (False, True):
        payloads = [
            json.dumps({"dataframe_split": b, "params": {"explain": explain}}).encode()
            for b in bodies
        ]
        client_loop(port, payloads, 20, [])  # warm-up
        for n in (1, clients):
            times: list[float] = []
            threads = [
                threading.Thread(target=client_loop, args=(port, payloads, requests // n, times))
                for _ in range(n)
            ]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - start
            results[(explain, n)] = (times, len(times) / elapsed)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()

    from recoverscore import registry

    history = generate_frame(args.train_rows, seed=1, as_of="2026-06-30")
    model = load_train_config().estimator().set_params(kind="lightgbm", num_threads=1)
    model.fit(history, history["recovered"].to_numpy(int))
    package = ModelPackage.build(model, training=history)
    trees = model.best_iteration_
    bodies = request_rows(200)
    with tempfile.TemporaryDirectory() as root:
        uri = f"sqlite:///{Path(root) / 'mlflow.db'}"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        os.chdir(root)
        package.save(Path(root) / "package")
        registered = registry.log_training(Path(root) / "package")
        print(f"model: {args.train_rows:,} training rows, {trees} trees per tier prediction")
        baseline = percentiles(lightgbm_one_row(package, args.requests))
        print(f"plain LightGBM predict, one row, one tier: {baseline}")
        for explain, runs in in_process(registered.model_uri, bodies, args.requests).items():
            label = "with explanations" if explain else "no explanations  "
            print(f"in-process pyfunc, one debtor, {label}: {percentiles(runs)}")
        checks = percentiles(validation_one_row(package, bodies, args.requests))
        print(f"of which validating the row against the contract: {checks}")
        if args.skip_http:
            return
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        for workers in args.workers:
            log = Path(root) / f"serve-{workers}.log"
            with served(registered.model_uri, env, workers, args.timeout, log) as port:
                for (explain, n), (times, rate) in over_http(
                    port, bodies, args.requests, args.clients
                ).items():
                    label = "with explanations" if explain else "no explanations  "
                    print(
                        f"HTTP -w {workers}, {n} client(s), {label}: {percentiles(times)}  "
                        f"{rate:6.1f} req/s"
                    )


if __name__ == "__main__":
    main()
