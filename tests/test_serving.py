"""Real time: the registered champion served by `mlflow models serve` answers like batch scoring."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uvicorn
from typer.testing import CliRunner
from uvicorn.loops.auto import auto_loop_factory

from recoverscore import registry
from recoverscore.cli import app
from recoverscore.data.schemas import TIERS, Portfolio, probability_column, value_column
from recoverscore.data.synthetic import generate_frame
from recoverscore.data.tables import read_table, write_table
from tests.conftest import free_port

BIN = Path(sys.executable).parent


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def served(model_dir, tmp_path_factory):
    """The champion registered in a fresh SQLite store and served on a loopback port."""
    root = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_REGISTRY_URI", uri)
        mp.chdir(root)
        version = registry.log_training(model_dir).version
        assert registry.promote("challenger") == version  # crown the challenger
        port = free_port()
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_REGISTRY_URI": uri,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # it runs uvicorn by name
        }
        log = (root / "serve.log").open("w")
        server = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                "models:/recoverscore@champion",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(
                            "mlflow models serve did not start: " + (root / "serve.log").read_text()
                        )
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/invocations", root, version
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def test_served_champion_answers_like_batch_scoring(served):
    url, root, version = served
    frame = generate_frame(25, seed=99, as_of="2026-06-30")[list(Portfolio.to_schema().columns)]
    write_table(frame, root / "portfolio.csv")
    result = CliRunner().invoke(
        app,
        ["score", "--input", str(root / "portfolio.csv"), "--output", str(root / "scored.csv"),
         "--no-track"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    batch = pd.read_csv(root / "scored.csv", dtype={"model_version": str})
    assert (batch["model_version"] == version).all()
    rows = read_table(root / "portfolio.csv")  # the request carries the CSV's text cells
    body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    status, answer = _post(url, body)
    assert status == 200, answer
    online = pd.DataFrame(answer["predictions"])
    assert online["debtor_id"].tolist() == batch["debtor_id"].tolist()
    assert (online["model_version"] == version).all()  # the registry version, not sha:...
    for column in ["recommended_tier", "excluded_tiers", "top_reasons", "reason_codes", "why"]:
        assert online[column].fillna("").tolist() == batch[column].fillna("").tolist(), column
    numbers = [*map(probability_column, TIERS), *map(value_column, TIERS), "expected_net_value"]
    np.testing.assert_allclose(online[numbers], batch[numbers], rtol=1e-9, atol=1e-6)


def test_served_model_refuses_a_bad_row_naming_it(served):
    url, root, _ = served
    frame = generate_frame(3, seed=5, as_of="2026-06-30")[list(Portfolio.to_schema().columns)]
    write_table(frame, root / "bad.csv")
    rows = read_table(root / "bad.csv")
    rows.loc[1, "due_date"] = "someday"
    status, answer = _post(
        url, {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    )
    assert status == 400
    assert "row 2: due_date: parse as date" in answer["message"]
    assert "someday" not in answer["message"]


def test_served_model_answers_empty_and_extreme_requests_without_a_stack(served):
    """Issue 13, D12 and D3: no rows, and a principal beyond the arithmetic, are a clear 400
    whose body holds neither a stack trace nor the offending value."""
    url, root, _ = served
    frame = generate_frame(3, seed=6, as_of="2026-06-30")[list(Portfolio.to_schema().columns)]
    write_table(frame, root / "extreme.csv")
    rows = read_table(root / "extreme.csv")
    empty = {"dataframe_split": {"columns": list(rows.columns), "data": []}}
    status, answer = _post(url, empty)
    assert status == 400 and "no rows to score" in answer["message"], answer
    assert "stack_trace" not in answer and "Traceback" not in json.dumps(answer)
    rows.loc[0, "principal"] = "2e19"
    status, answer = _post(
        url, {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    )
    assert status == 400, answer
    assert "row 1: principal: less_than_or_equal_to" in answer["message"]
    assert "stack_trace" not in answer and "2e19" not in json.dumps(answer)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda rows: rows.drop(columns="principal"), "row 1: principal: column_in_dataframe"),
        (lambda rows: rows.assign(principal=["12,5 thousand", "1", "2"]), "principal: parse as"),
        (lambda rows: rows.assign(n_partial_payments=["many", 0, 0]), "n_partial_payments: parse"),
    ],
    ids=["missing-column", "text-amount", "text-count"],
)
def test_a_refused_request_echoes_no_input_value(served, change, expected):
    """MLflow's server quotes the request's rows in errors from predict, and its signature
    enforcement quotes the bad value: neither reaches the answer (debtor ids, amounts)."""
    url, root, _ = served
    frame = generate_frame(3, seed=6, as_of="2026-06-30")[list(Portfolio.to_schema().columns)]
    write_table(frame, root / "refused.csv")
    rows = change(read_table(root / "refused.csv"))
    status, answer = _post(
        url, {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    )
    assert status == 400
    assert expected in answer["message"]
    body = json.dumps(answer)
    leaked = [i for i in frame["debtor_id"] if i in body] + [
        v for v in ("12,5 thousand", "many", str(frame["principal"].iloc[0])) if v in body
    ]
    assert not leaked and "Failed to predict data" not in body


def test_a_multi_worker_server_answers_without_nagle_delays():
    """``mlflow models serve -w N`` runs ``uvicorn --workers N``, whose supervisor binds the
    socket and hands it to the workers. On asyncio's own loop connections accepted on that
    socket keep Nagle's algorithm, so each keep-alive answer waits ~44 ms for the client's
    delayed ACK (a 2-worker server took 56 ms a request instead of 11). The loop uvicorn picks
    in this environment (uvloop, a dependency) must set TCP_NODELAY on them."""
    listener = uvicorn.Config("mlflow.pyfunc.scoring_server.app:app", host="127.0.0.1", port=0)
    sock = listener.bind_socket()  # what the multi-worker supervisor does
    loop = auto_loop_factory(use_subprocess=True)()
    accepted: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            connection = transport.get_extra_info("socket")
            accepted.append(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def connect_once() -> None:
        server = await loop.create_server(Probe, sock=sock)
        reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        await reader.read()  # the probe closes the connection
        writer.close()
        server.close()
        await server.wait_closed()

    try:
        loop.run_until_complete(connect_once())
    finally:
        loop.close()
    assert len(accepted) == 1 and accepted[0] != 0
