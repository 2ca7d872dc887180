"""The README's shared MLflow server, run as written: PostgreSQL, authentication, proxied artifacts.

The test starts a PostgreSQL cluster of its own (Debian's ``postgresql``: ``initdb`` and
``pg_ctl``, as the ``postgres`` user when the test runs as root) in a temporary folder on a free
loopback port, then ``mlflow server`` with exactly the exports, flags and ``basic_auth.ini`` of
the README's recipe (the blocks marked ``<!-- shared-server: ... -->``), its placeholders
replaced by loopback addresses, a local artifact folder and fresh random secrets. Through it the
CLI trains, promotes, lists and scores as three people: the admin, a read-only analyst the admin
creates, and a client without credentials.

PostgreSQL and the ``server`` extra (``psycopg2``, ``flask_wtf``) missing: the tests skip
locally and fail on CI (``CI=true``), where ``.ci/run`` installs PostgreSQL and ``make test``
installs the extra.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import os
import pwd
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
import requests

from tests.conftest import ROOT, free_port
from tests.test_mlflow_ui import (
    BIN,
    COMMAND_TIMEOUT,
    NEUTRAL_USER,
    QUIET_MLFLOW,
    _small_train_config,
    _start_server,
    _stop,
)

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
PG_LIB = Path("/usr/lib/postgresql")  # Debian keeps initdb and pg_ctl off PATH, per version
DB_ROLE = "mlflow"
MODEL = "recoverscore"
_BLOCK = re.compile(r"<!-- shared-server: (?P<name>[\w.]+) -->\n```\w+\n(?P<body>.*?)```", re.S)


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian layout), else ``initdb`` on PATH."""
    versions = [p.parent for p in PG_LIB.glob("*/bin/initdb") if p.parent.parent.name.isdigit()]
    if versions:
        return max(versions, key=lambda p: int(p.parent.name))
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres() -> list[str]:
    """The prefix that runs a PostgreSQL server command: it refuses to run as root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _missing() -> str | None:
    if _pg_bin() is None:
        return (
            "PostgreSQL is not installed (no initdb): "
            "`apt-get install -y --no-install-recommends postgresql`"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and there is no runuser to run PostgreSQL as postgres"
    for module in ("psycopg2", "flask_wtf"):
        if importlib.util.find_spec(module) is None:
            return (
                f"{module} cannot be imported: install the server extra "
                "(`pip install -c constraints.txt -e '.[test,server]'`, as `make test` does)"
            )
    return None


class Secret(str):
    """A fresh random password or key that a failing test's report does not show."""

    @classmethod
    def new(cls) -> Secret:
        return cls(secrets.token_urlsafe(18))

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True)
class Postgres:
    port: int
    password: Secret
    log: Path


def _initdb(bindir: Path, data: Path, password: str) -> None:
    """A cluster whose superuser is the ``mlflow`` role, with password logins only."""
    pwfile = data.parent / "pwfile"
    pwfile.write_text(password, encoding="utf-8")
    pwfile.chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres")
    try:
        subprocess.run(
            [*_as_postgres(), str(bindir / "initdb"), "-D", str(data), "-U", DB_ROLE,
             f"--pwfile={pwfile}", "-A", "scram-sha-256", "-E", "UTF8", "--no-sync",
             "--no-instructions"],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        pwfile.unlink()


def _pg_ctl(bindir: Path, data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_as_postgres(), str(bindir / "pg_ctl"), "-D", str(data), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with empty ``mlflow`` and ``mlflow_auth``."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(
                f"CI=true and {missing} (.ci/run installs PostgreSQL, make test the extra)",
                pytrace=False,
            )
        pytest.skip(missing)
    bindir = _pg_bin()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="recoverscore-pg-"))  # not pytest's: root-only folders
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "postgres.log"
    password = Secret.new()
    try:
        _initdb(bindir, data, password)
        for _attempt in range(3):  # the free port may be taken before PostgreSQL binds it
            port = free_port()
            options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off"
            started = _pg_ctl(
                bindir, data, "-l", str(log), "-w", "-t", "60", "-o", options, "start"
            )
            if started.returncode == 0:
                break
        else:
            pytest.fail(f"PostgreSQL did not start: {log.read_text(errors='replace')}")
        try:
            for database in ("mlflow", "mlflow_auth"):
                subprocess.run(
                    [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", DB_ROLE,
                     database],
                    env={**os.environ, "PGPASSWORD": password},
                    check=True, capture_output=True, text=True, timeout=60,
                )  # fmt: skip
            yield Postgres(port, password, log)
        finally:
            _pg_ctl(bindir, data, "-m", "fast", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the README's recipe ----------------------------------------------------------------------


def recipe_blocks() -> dict[str, str]:
    return {m["name"]: m["body"] for m in _BLOCK.finditer(README.read_text(encoding="utf-8"))}


@dataclass(frozen=True)
class Recipe:
    """The server's command and environment, and the ``basic_auth.ini`` text, from the README."""

    command: list[str]
    exports: dict[str, str]
    auth_ini: str


def recipe(replace: dict[str, str], secrets: dict[str, str]) -> Recipe:
    """The README's server block with every placeholder in ``replace`` substituted and each
    exported ``'<placeholder>'`` set from ``secrets`` (by variable name).

    The ``pip install`` line is skipped (the test runs in the installed environment); every
    other line is an ``export`` or the ``mlflow server`` command.
    """
    blocks = recipe_blocks()

    def substituted(text: str) -> str:
        for old, new in replace.items():
            text = text.replace(old, new)
        return text

    lines = substituted(blocks["server"]).replace("\\\n", " ").splitlines()
    exports: dict[str, str] = {}
    command: list[str] = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if not words or words[:2] == ["pip", "install"]:
            continue
        if words[0] == "export":
            for word in words[1:]:
                name, _, value = word.partition("=")
                secret = re.fullmatch(r"<[^>]+>", value) is not None
                assert secret == (name in secrets), f"{name}={value}: a secret, or not?"
                exports[name] = secrets[name] if secret else value
        elif words[:2] == ["mlflow", "server"]:
            command = [str(BIN / "mlflow"), *words[1:]]
        else:
            raise AssertionError(f"unexpected line in the README's server recipe: {line}")
    assert command, "the README's server recipe has no `mlflow server` command"
    leftover = re.findall(r"<[^>]+>|\.internal\b|s3://", " ".join(command))
    assert not leftover, f"placeholders the test does not replace: {leftover}"
    return Recipe(command, exports, substituted(blocks["basic_auth.ini"]))


def test_recipe_holds_no_credential_and_names_its_driver():
    blocks = recipe_blocks()
    assert set(blocks) == {"server", "basic_auth.ini"}
    every_uri = re.findall(r"postgresql[+\w]*://\S+", "\n".join(blocks.values()))
    assert every_uri and all(u.startswith("postgresql+psycopg2://") for u in every_uri)
    assert not [u for u in every_uri if ":" in u.split("://", 1)[1].split("@", 1)[0]]
    for secret in ("PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert re.search(rf"export {secret}='<[^>]+>'", blocks["server"]), secret
    config = configparser.ConfigParser()
    config.read_string(blocks["basic_auth.ini"])
    assert "admin_password" not in config["mlflow"]


# --- the server and the three people using it -------------------------------------------------


@pytest.fixture(scope="module")
def server(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """``mlflow server`` as the README runs it, on the cluster above; always stopped afterwards."""
    root = tmp_path_factory.mktemp("shared_server")
    secrets_ = {
        "PGPASSWORD": postgres.password,
        "MLFLOW_AUTH_ADMIN_PASSWORD": Secret.new(),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": Secret.new(),
    }
    placeholders = {
        "db.internal:5432": f"127.0.0.1:{postgres.port}",
        "s3://collections-mlflow/artifacts": str(root / "artifacts"),
        "/etc/mlflow/basic_auth.ini": str(root / "basic_auth.ini"),
        "--host 0.0.0.0": "--host 127.0.0.1",  # loopback only, whatever the recipe binds
    }
    first = recipe({**placeholders, "mlflow.internal:5000": "127.0.0.1:5000"}, secrets_)
    (root / "basic_auth.ini").write_text(first.auth_ini, encoding="utf-8")

    def command(_root: Path, port: int) -> list[str]:
        ported = {"--port 5000": f"--port {port}", "mlflow.internal:5000": f"127.0.0.1:{port}"}
        return recipe({**placeholders, **ported}, secrets_).command

    log = root / "server.log"
    process, url = _start_server(root, log, command, first.exports)
    try:
        yield SimpleNamespace(
            url=url,
            root=root,
            log=log,
            admin=("admin", secrets_["MLFLOW_AUTH_ADMIN_PASSWORD"]),
            secrets=list(secrets_.values()),
            postgres=postgres,
        )
    finally:
        _stop(process)


def _cli(args: list[str], cwd: Path, url: str, user: tuple[str, str] | None):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    }
    env |= {**QUIET_MLFLOW, **NEUTRAL_USER, "MLFLOW_TRACKING_URI": url}
    env.pop("MLFLOW_REGISTRY_URI", None)
    if user is not None:
        env |= {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}
    result = subprocess.run(
        [str(BIN / "recoverscore"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
    )  # fmt: skip
    return SimpleNamespace(code=result.returncode, output=result.stdout + result.stderr)


def _ok(result: SimpleNamespace) -> str:
    assert result.code == 0, result.output
    return result.output


@contextlib.contextmanager
def _as(user: tuple[str, str]) -> Iterator[None]:
    """MLflow's own clients in this process acting as ``user``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", user[0])
        mp.setenv("MLFLOW_TRACKING_PASSWORD", user[1])
        yield


@pytest.fixture(scope="module")
def team(server: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Train as the admin; promote without credentials, as the analyst, then as the admin;
    list and score. Each outcome is recorded for the tests below."""
    work = tmp_path_factory.mktemp("shared_work")
    url, admin = server.url, server.admin
    analyst = ("analyst", Secret.new())
    created = requests.post(  # MLflow's auth API, as get_app_client("basic-auth") calls it
        f"{url}/api/2.0/mlflow/users/create",
        json={"username": analyst[0], "password": analyst[1]},
        auth=admin,
        timeout=60,
    )
    assert created.status_code == 200, created.text
    config = _small_train_config(work / "train.yaml")
    history, portfolio = work / "history.parquet", work / "portfolio.csv"
    outputs = [
        _ok(_cli(["generate", "--rows", "4000", "--seed", "3", "--out", str(history)], work,
                 url, None)),
        _ok(_cli(["generate", "--rows", "300", "--seed", "8", "--out", str(portfolio)], work,
                 url, None)),
    ]  # fmt: skip
    train = _cli(["train", "--data", str(history), "--config", str(config), "--out",
                  str(work / "model")], work, url, admin)  # fmt: skip
    outputs.append(_ok(train))
    anonymous = _cli(["promote", "challenger"], work, url, None)
    reader = _cli(["promote", "challenger"], work, url, analyst)
    reader_models = _cli(["models"], work, url, analyst)
    promoted = _cli(["promote", "challenger"], work, url, admin)
    models = _cli(["models"], work, url, admin)
    score = _cli(["score", "--input", str(portfolio), "--output", str(work / "scored.csv")],
                 work, url, admin)  # fmt: skip
    wrong_host = _cli(["models"], work, url.replace("127.0.0.1", "localhost"), admin)
    outputs += [r.output for r in (anonymous, reader, reader_models, promoted, models, score,
                                   wrong_host)]  # fmt: skip
    return SimpleNamespace(
        work=work,
        train=train,
        anonymous=anonymous,
        reader=reader,
        reader_models=reader_models,
        promoted=promoted,
        models=models,
        score=score,
        wrong_host=wrong_host,
        outputs=outputs,
        secrets=[*server.secrets, analyst[1]],
    )


def _one_line_error(result: SimpleNamespace) -> str:
    assert result.code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_train_registers_the_challenger_in_postgresql(server, team):
    assert "registered recoverscore version 1 @challenger" in team.train.output
    import sqlalchemy as sa

    engine = sa.create_engine(
        f"postgresql+psycopg2://{DB_ROLE}@127.0.0.1:{server.postgres.port}/mlflow",
        connect_args={"password": server.postgres.password},
    )
    try:
        with engine.connect() as db:
            versions = db.execute(sa.text("select name, version from model_versions")).all()
            aliases = dict(
                db.execute(sa.text("select alias, version from registered_model_aliases")).all()
            )
    finally:
        engine.dispose()
    assert versions == [(MODEL, 1)]
    assert aliases == {"challenger": 1, "champion": 1}


def test_artifacts_go_to_the_proxied_store_and_nothing_is_written_locally(server, team):
    stored = {p.name for p in (server.root / "artifacts").rglob("*") if p.is_file()}
    assert {"model.txt", "package.json", "package.sha256", "MLmodel"} <= stored
    local = {p.name for p in team.work.iterdir()}
    assert local == {
        "train.yaml",
        "history.parquet",
        "portfolio.csv",
        "model",
        "scored.csv",
        "scored.rejects.csv",
        "scored.drift.json",
    }  # no mlflow.db, mlruns or mlartifacts


def test_a_client_without_credentials_cannot_promote(team):
    line = _one_line_error(team.anonymous)
    assert "HTTP 401" in line and "MLFLOW_TRACKING_USERNAME" in line


def test_a_read_only_user_cannot_promote_but_can_list(team):
    line = _one_line_error(team.reader)
    assert "cannot move @champion to version 1" in line
    assert "permission denied: analyst needs EDIT permission on model recoverscore" in line
    assert "challenger" in _ok(team.reader_models) and "champion" not in team.reader_models.output


def test_the_admin_promotes_lists_and_scores(team):
    assert "recoverscore version 1 is now @champion" in _ok(team.promoted)
    listed = _ok(team.models)
    assert re.search(r"│\s*1\s*│\s*challenger, champion\s*│", listed), listed
    _ok(team.score)
    scored = pd.read_csv(team.work / "scored.csv", dtype={"model_version": str})
    assert len(scored) == 300 and (scored["model_version"] == "1").all()
    assert "MLflow run" in team.score.output


def test_a_host_name_the_server_does_not_allow_is_one_line(team):
    line = _one_line_error(team.wrong_host)
    assert "HTTP 403" in line and "localhost" in line and "--allowed-hosts" in line


def test_no_credential_lands_in_logs_runs_or_outputs(server, team):
    texts = {"server log": server.log.read_text(errors="replace")}
    texts["postgres log"] = server.postgres.log.read_text(errors="replace")
    texts |= {f"output {i}": out for i, out in enumerate(team.outputs)}
    for path in [*(server.root / "artifacts").rglob("*"), *team.work.rglob("*")]:
        if path.is_file() and path.suffix in {".json", ".csv", ".md", ".txt", ".yaml", ""}:
            texts[str(path)] = path.read_text(errors="replace")
    with _as(server.admin):
        client = mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()], max_results=100
        )
    assert len(runs) == 2  # the training run and the scoring run
    for run in runs:
        texts[f"run {run.info.run_id}"] = repr(run.data.params) + repr(run.data.tags)
    leaks = [(where, i) for where, text in texts.items() for i, s in enumerate(team.secrets)
             if s in text]  # fmt: skip
    assert not leaks
