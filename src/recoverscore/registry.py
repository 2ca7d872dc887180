"""The MLflow edge: tracking runs, registering models and loading them back.

Every MLflow call in recoverscore lives here, so the rest of the package never depends on a
tracking server being there and MLflow's errors reach users as one-line ``RecoverscoreError``s.

The registered model is the pyfunc in ``scoring/pyfunc_model.py``, logged as *models-from-code*:
the registry holds that source file and the model package (LightGBM's text model and JSON under
one hash), never a pickle. The input example stored with it is built from a fresh synthetic
portfolio (the user's own columns left empty), so no real debtor's row ever leaves the user's
machine through the registry, and runs carry aggregate metrics, plots and tables only.

Versions move through aliases rather than stages: a new registration becomes ``challenger``;
``promote`` makes a version ``champion``, which is what scoring uses by default.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from packaging.requirements import Requirement
from sqlalchemy.exc import SQLAlchemyError

from recoverscore.data import schemas
from recoverscore.data.contract import InputContract
from recoverscore.data.synthetic import generate_frame
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring.package import HASH_FILE, MODEL_FILE, PACKAGE_FILE, ModelPackage
from recoverscore.scoring.pyfunc_model import SERVING_PARAMS

if TYPE_CHECKING:
    import requests
    from matplotlib.figure import Figure

    from recoverscore.scoring.batch import JobResult
    from recoverscore.scoring.pipeline import ScoringOptions
    from recoverscore.training import TrainingResult

MODEL_NAME = "recoverscore"
EXPERIMENT = "recoverscore"
ALIASES = ("champion", "challenger")

_PACKAGE_FILES = (MODEL_FILE, PACKAGE_FILE, HASH_FILE)  # what ModelPackage.save writes
_CONNECT_TIMEOUT = 5.0  # seconds; MLflow's own client retries for minutes before giving up
_PROBE = "/api/2.0/mlflow/experiments/search"  # a real API call: allowed hosts, credentials
_EXAMPLE_AS_OF = "2026-06-30"
_CODE_DIR = Path(__file__).resolve().parent  # bundled with every registered model
_PYFUNC_FILE = _CODE_DIR / "scoring" / "pyfunc_model.py"
_VERSION_COLUMNS = ["version", "aliases", "run_id", "created", "test_auc"]


# --- connecting -----------------------------------------------------------------------------------


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else a SQLite file ``mlflow.db`` in the working directory.

    A SQLite file needs no server and supports the model registry, unlike a plain folder.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or ``None`` for an in-memory database."""
    _, _, rest = uri.partition(":///")
    path = rest.split("?", 1)[0]
    return None if not path or path == ":memory:" else Path(path).expanduser()


def _innermost(error: BaseException) -> BaseException:
    """The root cause of a chained error (the refused connection under requests' wrappers)."""
    while (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__
    return error


def _answer(response: requests.Response) -> str:
    """The first line of a server's error answer: MLflow's JSON ``message`` or its plain text."""
    try:
        text = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        text = response.text
    lines = text.strip().splitlines()
    return lines[0] if lines else f"HTTP {response.status_code} {response.reason}"


def _check_server(uri: str) -> None:
    """Fail fast, with the reason, unless the MLflow server at ``uri`` answers a real API call.

    One experiment search, sent with the credentials MLflow itself would send
    (``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, a token, TLS settings) and no
    retries: a wrong address, a host name the server does not allow, or missing or refused
    credentials is one line within seconds instead of an error deep inside the first command.
    ``/health`` is not enough: it answers 200 to requests the API then refuses.
    """
    creds = get_default_host_creds(uri)
    try:
        response = http_request(
            creds,
            _PROBE,
            "GET",
            max_retries=0,
            timeout=_CONNECT_TIMEOUT,
            raise_on_status=False,
            params={"max_results": 1},
        )
    except MlflowException as error:
        raise RecoverscoreError(
            f"cannot reach the MLflow tracking server at {uri}: {_innermost(error)}"
        ) from None
    if response.status_code == 200:
        return
    answer = _answer(response)
    if response.status_code == 401:
        hint = (
            "it refused the user name and password given"
            if creds.username
            else "it asks for a user name and password"
        ) + " (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
    elif response.status_code == 403 and "Host header" in answer:
        host = urllib.parse.urlsplit(uri).netloc
        hint = f"the server does not accept the host name {host}: add it to its --allowed-hosts"
    else:
        hint = answer
    raise RecoverscoreError(
        f"the MLflow tracking server at {uri} refused the request "
        f"(HTTP {response.status_code}): {hint}"
    )


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Hide deprecation noise MLflow's own internals raise (nothing a user can act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The ``noload`` loader strategy is deprecated")
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        yield


def connect(uri: str | None = None) -> mlflow.MlflowClient:
    """Point MLflow's tracking and registry at ``uri`` (default ``tracking_uri()``) and check it.

    A server is probed with one short request and a SQLite file's folder must exist, so a wrong
    address fails in seconds with a one-line error instead of after MLflow's retry loop.
    """
    uri = uri or tracking_uri()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keeps logs readable
    server = uri.startswith(("http://", "https://"))
    if server:
        _check_server(uri)  # the client's own search would retry for minutes
    elif uri.startswith("sqlite:"):
        path = _sqlite_path(uri)
        if path is not None and not path.parent.is_dir():
            raise RecoverscoreError(
                f"cannot open the MLflow tracking store {uri}: folder {path.parent} does not exist"
            )
    try:
        with _quiet_mlflow():
            client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            if not server:
                client.search_experiments(max_results=1)
    except (MlflowException, SQLAlchemyError, OSError) as error:
        raise RecoverscoreError(
            f"cannot open the MLflow tracking store {uri}: {_first_line(error)}"
        ) from None
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return client


def _experiment_id(client: mlflow.MlflowClient, uri: str, name: str = EXPERIMENT) -> str:
    """The experiment's id, creating it on first use.

    With a SQLite store the artifacts go to ``mlartifacts/`` beside the database file, not to
    MLflow's default ``./mlruns`` in whatever folder the command happened to run from.
    """
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    path = _sqlite_path(uri) if uri.startswith("sqlite:") else None
    if path is not None:
        location = (path.resolve().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location)


# --- what gets logged -----------------------------------------------------------------------------


def input_example(contract: InputContract) -> pd.DataFrame:
    """Two rows in the form a serving request carries them, with the contract's columns.

    Built from a fresh synthetic portfolio on purpose: whatever a user trains on, the example
    stored in the registry is never one of their debtors. The user's own columns are left
    empty (missing is always allowed there); dates are ISO text and missing values ``None`` so
    the example serialises to JSON as it is.
    """
    world = generate_frame(2, seed=0, as_of=_EXAMPLE_AS_OF).reset_index(drop=True)
    frame = pd.DataFrame({contract.id_column: ["EXAMPLE-1", "EXAMPLE-2"]})
    kinds = schemas.column_kinds(contract.schema)
    for name in contract.standard:
        values = world[name]
        if kinds[name] == "date":
            values = [None if pd.isna(d) else d.strftime("%Y-%m-%d") for d in values]
        elif kinds[name] == "bool":
            values = [None if pd.isna(v) else bool(v) for v in values]
        frame[name] = (
            pd.Series(list(values), dtype=object) if kinds[name] in ("date", "bool") else values
        )
    for name in contract.extra_numeric:
        frame[name] = np.nan
    for name in contract.extra_categorical:
        frame[name] = pd.Series([None, None], dtype=object)
    return frame


def _signature(example: pd.DataFrame, output: pd.DataFrame) -> ModelSignature:
    """The signature inferred from the example, its inputs loosened to ``Any`` and optional.

    The pyfunc parses and checks every cell against the model's contract itself, naming rows,
    columns and checks but never values. MLflow's own enforcement would refuse a bad cell or a
    missing column first, with an error that quotes the request's rows (debtor ids, amounts)
    or the offending value; the column names and types are documented by the contract.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        inferred = infer_signature(example, output, params=SERVING_PARAMS)
    inputs = [ColSpec(AnyType(), spec.name, required=False) for spec in inferred.inputs.inputs]
    return ModelSignature(inputs=Schema(inputs), outputs=inferred.outputs, params=inferred.params)


def _example_output(package: ModelPackage, example: pd.DataFrame) -> pd.DataFrame:
    """What the pyfunc returns for the example, computed the way serving will compute it."""
    from recoverscore.scoring.pyfunc_model import RecoverscorePyfunc  # it sets MLflow state

    scorer = RecoverscorePyfunc()
    scorer.package = package
    return scorer.predict(None, example)


def _flatten(params: dict[str, object], prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted keys, values cut to MLflow's length limit."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_VAL_LENGTH]
    return flat


def _pip_requirements() -> list[str]:
    """recoverscore's own runtime dependencies, pinned to this environment's versions.

    The registered model carries recoverscore's code (``code/recoverscore``), so these are all
    another serving environment has to install (``mlflow models serve --env-manager
    virtualenv`` builds it from them); listing them also spares MLflow from inferring them by
    importing and running the model in a subprocess.
    """
    try:
        declared = requires("recoverscore") or []
    except PackageNotFoundError:
        raise RecoverscoreError(
            "recoverscore is not installed (pip install -e .), so the model's requirements "
            "cannot be listed"
        ) from None
    pinned = []
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # the test and server extras
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        pinned.append(f"{requirement.name}{extras}=={package_version(requirement.name)}")
    return pinned


def _stage_code(staging: Path) -> Path:
    """recoverscore's source (with its YAML settings, without bytecode) for the model's code."""
    return Path(
        shutil.copytree(
            _CODE_DIR,
            staging / "recoverscore",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    )


@dataclass(frozen=True)
class RegisteredModel:
    """Where a training run's model went: its run, its registry version and a URI to load it."""

    run_id: str
    version: str
    model_uri: str


def log_training(
    package_dir: Path,
    result: TrainingResult | None = None,
    params: dict[str, object] | None = None,
    uri: str | None = None,
) -> RegisteredModel:
    """Log one training run and register its saved package as the new ``challenger``.

    The run holds settings, metrics, plots, aggregate tables, the input contract and the data's
    digest (to tell which file trained it without storing the file). Tables keyed by debtor are
    refused: nothing row-level goes to a tracking server that others may read. Without a
    ``result`` (a package trained elsewhere) the run holds the package and its contract only.
    """
    package_dir = Path(package_dir)
    package = ModelPackage.load(package_dir)  # a broken package fails here, before any logging
    metrics = result.metrics if result is not None else {}
    figures = result.evaluation.figures if result is not None else {}
    tables = result.evaluation.tables if result is not None else {}
    params = params or {}
    data_digest = str(package.metadata.get("data_digest", ""))
    personal = sorted(name for name, table in tables.items() if "debtor_id" in table.columns)
    if personal:
        raise RecoverscoreError(f"tables {personal} have a debtor_id column; log aggregates only")
    uri = uri or tracking_uri()
    client = connect(uri)
    example = input_example(package.contract)
    signature = _signature(example, _example_output(package, example))
    try:
        experiment_id = _experiment_id(client, uri)
        with tempfile.TemporaryDirectory() as staging:
            staged = Path(staging) / "package"  # always artifacts/package inside the model
            staged.mkdir()
            for name in _PACKAGE_FILES:
                if (package_dir / name).is_file():  # a scorecard has no model.txt
                    shutil.copy2(package_dir / name, staged / name)
            with mlflow.start_run(experiment_id=experiment_id) as run:
                if params:
                    mlflow.log_params(_flatten(params))
                if metrics:
                    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
                for name, figure in figures.items():
                    mlflow.log_figure(figure, f"plots/{name}.png")
                for name, table in tables.items():
                    mlflow.log_text(table.to_csv(index=False), f"tables/{name}.csv")
                mlflow.log_text(package.contract.reference(), "schema/input_contract.md")
                mlflow.set_tags({"data_digest": data_digest, "recoverscore": version_string()})
                with _quiet_mlflow():
                    info = mlflow.pyfunc.log_model(
                        name="model",
                        python_model=str(_PYFUNC_FILE),
                        artifacts={"package": str(staged)},
                        signature=signature,
                        input_example=example,
                        registered_model_name=MODEL_NAME,
                        pip_requirements=_pip_requirements(),
                        code_paths=[str(_stage_code(Path(staging)))],
                    )
        model_version = str(info.registered_model_version)
        client.set_registered_model_alias(MODEL_NAME, "challenger", model_version)
    except MlflowException as error:
        raise RecoverscoreError(
            f"logging to MLflow at {uri} failed: {_first_line(error)}"
        ) from error
    return RegisteredModel(
        run_id=run.info.run_id,
        version=model_version,
        model_uri=f"models:/{MODEL_NAME}/{model_version}",
    )


def version_string() -> str:
    """The installed recoverscore version, recorded on every run."""
    try:
        return package_version("recoverscore")
    except PackageNotFoundError:
        return "unknown"


# --- the registry ---------------------------------------------------------------------------------


def promote(version: str | int, alias: str = "champion", uri: str | None = None) -> str:
    """Point ``alias`` (by default ``champion``, what scoring uses) at a registered version.

    ``version`` is a number or another alias (``promote("challenger")`` crowns the challenger).
    Returns the version number promoted.
    """
    client = connect(uri)
    ref = str(version).strip()
    try:
        if ref.isdigit():
            number = str(client.get_model_version(MODEL_NAME, ref).version)
        elif ref in ALIASES:
            number = str(client.get_model_version_by_alias(MODEL_NAME, ref).version)
        else:
            raise MlflowException(f"not a version number or alias: {ref!r}")
    except MlflowException:
        raise RecoverscoreError(f"model {MODEL_NAME} has no version {version}") from None
    try:
        client.set_registered_model_alias(MODEL_NAME, alias, number)
    except MlflowException as error:
        reason = _first_line(error)
        if error.get_http_status_code() == 403:  # a user who may read but not change the model
            user = os.environ.get("MLFLOW_TRACKING_USERNAME", "this user")
            reason = f"permission denied: {user} needs EDIT permission on model {MODEL_NAME}"
        raise RecoverscoreError(
            f"cannot move @{alias} to version {number} at {uri or tracking_uri()}: {reason}"
        ) from None
    return number


def resolve_model_uri(ref: str) -> str:
    """An MLflow model URI from ``champion``, ``challenger``, a version number or a URI."""
    ref = str(ref).strip()
    if ref in ALIASES:
        return f"models:/{MODEL_NAME}@{ref}"
    if ref.isdigit():
        return f"models:/{MODEL_NAME}/{int(ref)}"
    if ref.startswith(("models:/", "runs:/")):
        return ref
    raise RecoverscoreError(
        f"unknown model reference {ref!r}: use a package folder, {' or '.join(ALIASES)}, "
        "a version number, or a models:/ or runs:/ URI"
    )


def _check_registered(client: mlflow.MlflowClient, model_uri: str) -> None:
    """Turn a missing registered version or alias into a one-line error before downloading."""
    if not model_uri.startswith("models:/"):
        return
    body = model_uri.removeprefix("models:/")
    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            what = f"alias {alias!r}"
            client.get_model_version_by_alias(name, alias)
        else:
            name, _, number = body.partition("/")
            what = f"version {number}"
            if number.isdigit():
                client.get_model_version(name, number)
    except MlflowException:
        raise RecoverscoreError(f"model {name} has no {what}") from None


def _package_dir(model_dir: Path) -> Path:
    """The ``package`` artifact inside a downloaded pyfunc model, as its MLmodel records it."""
    relative = "artifacts/package"
    mlmodel = model_dir / "MLmodel"
    if mlmodel.is_file():
        spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
        artifacts = spec.get("flavors", {}).get("python_function", {}).get("artifacts", {})
        relative = artifacts.get("package", {}).get("path", relative)
    return model_dir / relative


@dataclass(frozen=True)
class LoadedPackage:
    """A model package with the version label scored rows carry (the registry version, or the
    package's own hash label for a local folder) and where it came from."""

    package: ModelPackage
    version: str
    uri: str


def load_package(ref: str, uri: str | None = None) -> LoadedPackage:
    """A model package from a local folder or from the registry (alias, version, URI).

    A registry model is downloaded to a temporary folder and its package loaded (hash-checked,
    nothing unpickled); nothing is left behind.
    """
    local = Path(str(ref))
    if local.is_dir() and (local / PACKAGE_FILE).is_file():
        package = ModelPackage.load(local)
        return LoadedPackage(package, package.label, str(local.resolve()))
    try:
        model_uri = resolve_model_uri(ref)
    except RecoverscoreError:
        if local.is_dir():  # a folder that is not a package: say what it lacks
            ModelPackage.load(local)
        raise
    client = connect(uri)
    _check_registered(client, model_uri)
    number = _registered_version(client, model_uri)
    with tempfile.TemporaryDirectory() as download:
        try:
            model_dir = mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=download
            )
        except (MlflowException, OSError) as error:
            raise RecoverscoreError(
                f"cannot download model {ref} ({model_uri}): {_first_line(error)}"
            ) from None
        package_dir = _package_dir(Path(model_dir))
        if not (package_dir / PACKAGE_FILE).is_file():
            raise RecoverscoreError(f"{model_uri} is not a recoverscore model: no package artifact")
        package = ModelPackage.load(package_dir)
    return LoadedPackage(package, number or package.label, model_uri)


def _registered_version(client: mlflow.MlflowClient, model_uri: str) -> str | None:
    """The version number a ``models:/`` URI names (an alias resolved), else ``None``."""
    body = model_uri.removeprefix("models:/")
    if not model_uri.startswith("models:/"):
        return None
    if "@" in body:
        name, alias = body.split("@", 1)
        return str(client.get_model_version_by_alias(name, alias).version)
    number = body.partition("/")[2]
    return number if number.isdigit() else None


def version_of_logged_model(run_id: str | None, model_id: str | None) -> str | None:
    """The registry version of a logged model (what a served model reports), if reachable.

    The served pyfunc knows only its run and model id (its MLmodel file); the version number is
    given by the registry after logging, so it is looked up there, once, when serving starts.
    """
    if not run_id or not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    try:
        client = connect()
        versions = client.search_model_versions(f"run_id = '{run_id}'")
    except (RecoverscoreError, MlflowException):
        return None
    numbers = [
        int(v.version)
        for v in versions
        if v.name == MODEL_NAME and (model_id is None or v.model_id in (None, model_id))
    ]
    return str(max(numbers)) if numbers else None


def describe_versions(uri: str | None = None) -> pd.DataFrame:
    """One row per registered version, oldest first: aliases, run, creation time, test AUC.

    Aliases come from the registered model: MLflow's version search leaves them empty.
    """
    client = connect(uri)
    try:
        aliases = client.get_registered_model(MODEL_NAME).aliases
        versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    except MlflowException:  # nothing registered yet
        aliases, versions = {}, []
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version)):
        try:
            auc = client.get_run(mv.run_id).data.metrics.get("test_auc") if mv.run_id else None
        except MlflowException:
            auc = None
        rows.append(
            {
                "version": str(mv.version),
                "aliases": ", ".join(
                    sorted(a for a, v in aliases.items() if str(v) == str(mv.version))
                ),
                "run_id": mv.run_id,
                "created": pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC"),
                "test_auc": float("nan") if auc is None else float(auc),
            }
        )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _VERSION_COLUMNS})
    return pd.DataFrame(rows, columns=_VERSION_COLUMNS)


# --- scoring runs ---------------------------------------------------------------------------------

SCORING_EXPERIMENT = "recoverscore-scoring"


def scoring_metrics(result: JobResult) -> dict[str, float]:
    """The figures of one batch-scoring run: counts, speed, tier shares, value, PSI."""
    stats = result.stats
    metrics = {
        "rows_in": stats["rows_in"],
        "rows_scored": stats["scored"],
        "rows_rejected": stats["rejected"],
        "seconds": result.seconds,
        "rows_per_second": stats["rows_in"] / max(result.seconds, 1e-9),
    }
    for tier, n in stats["tiers"].items():
        metrics[f"share_{tier}"] = n / stats["scored"] if stats["scored"] else 0.0
        metrics[f"net_value_{tier}"] = stats["net_value"][tier]
    if result.drift is not None:
        from recoverscore.scoring import drift

        for row in result.drift.dropna(subset=["psi"]).itertuples(index=False):
            metrics[f"psi_{row.group}_{row.column}"] = row.psi
        overview = drift.summary(result.drift)
        metrics["psi_max"] = float(result.drift["psi"].max())
        metrics["drifted_columns"] = overview["n_drifted"]
        metrics["moderate_columns"] = overview["n_moderate"]
    return metrics


def log_scoring(
    result: JobResult,
    loaded: LoadedPackage,
    options: ScoringOptions,
    engine: str,
    uri: str | None = None,
) -> str:
    """Log one batch-scoring run (aggregates only) to its own experiment; returns the run id.

    Counts, tier mix, PSI and plots go in; no row, id or file path does.
    """
    from recoverscore.scoring import drift
    from recoverscore.scoring.batch import decision_dates_text

    stats = result.stats
    tables = {
        "tier_mix": pd.DataFrame(
            {
                "tier": list(stats["tiers"]),
                "debts": list(stats["tiers"].values()),
                "expected_net_cny": list(stats["net_value"].values()),
            }
        ),
        "rejects_by_check": pd.DataFrame(
            {"check": list(stats["checks"]), "rows": list(stats["checks"].values())}
        ),
    }
    figures = {}
    report = None
    if result.drift is not None:
        tables["psi"] = result.drift
        figures["psi"] = drift.psi_figure(result.drift)
        report = json.loads(result.report.read_text(encoding="utf-8"))
    params = {
        "model_version": loaded.version,
        "model_uri": loaded.uri if loaded.uri.startswith("models:/") else "local package",
        **options.describe(),
        "as_of": decision_dates_text(stats),
        "overrides": ";".join(loaded.package.overrides.values()) or "none",
        "engine": engine,
    }
    return _log_scoring_run(params, scoring_metrics(result), tables, figures, report, uri)


def _log_scoring_run(
    params: dict[str, object],
    metrics: dict[str, float],
    tables: dict[str, pd.DataFrame],
    figures: dict[str, Figure],
    report: dict | None,
    uri: str | None,
) -> str:
    """Log one batch-scoring run (aggregates only) to its own experiment; returns the run id.

    Counts, tier mix, PSI and plots go in; no row, id or file path does: tables keyed by
    debtor are refused as in ``log_training``.
    """
    personal = sorted(name for name, table in tables.items() if "debtor_id" in table.columns)
    if personal:
        raise RecoverscoreError(f"tables {personal} have a debtor_id column; log aggregates only")
    uri = uri or tracking_uri()
    client = connect(uri)
    try:
        experiment_id = _experiment_id(client, uri, SCORING_EXPERIMENT)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(_flatten(params))
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            for name, table in tables.items():
                mlflow.log_text(table.to_csv(index=False), f"tables/{name}.csv")
            for name, figure in figures.items():
                mlflow.log_figure(figure, f"plots/{name}.png")
            if report is not None:
                mlflow.log_dict(report, "drift_report.json")
            mlflow.set_tags({"kind": "scoring", "recoverscore": version_string()})
    except MlflowException as error:
        raise RecoverscoreError(
            f"logging to MLflow at {uri} failed: {_first_line(error)}"
        ) from error
    return run.info.run_id
