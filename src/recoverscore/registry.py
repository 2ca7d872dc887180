"""The MLflow edge: tracking runs, registering models and loading them back.

Every MLflow call in recoverscore lives here, so the rest of the package never depends on a
tracking server being there and MLflow's errors reach users as one-line ``RecoverscoreError``s.

The registered model is the pyfunc in ``scoring/pyfunc_model.py``, logged as *models-from-code*:
the registry holds that source file and the model package (LightGBM's text model and JSON under
one hash), never a pickle. The input example stored with it is built from a fresh synthetic
portfolio (the user's own columns left empty), so no real debtor's row ever leaves the user's
machine through the registry, and runs carry aggregate metrics, plots and tables only.

Versions move through aliases rather than stages: a new registration becomes ``challenger``;
``promote`` makes a version ``champion``, which is what scoring uses by default. An alias is one
of ``ALIASES`` or a team's own name starting ``x-`` (``x-shadow``): anything else is refused, so a
typo such as ``champoin`` never quietly creates an alias nothing reads.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
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
from mlflow.entities import LoggedModelInput
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.utils import logging_utils
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
from packaging.requirements import Requirement
from sqlalchemy.exc import SQLAlchemyError

from recoverscore.data import schemas
from recoverscore.data.contract import InputContract
from recoverscore.data.synthetic import generate_frame
from recoverscore.errors import RecoverscoreError
from recoverscore.scoring.package import (
    HASH_FILE,
    MODEL_FILE,
    PACKAGE_FILE,
    ModelPackage,
    settings_digest,
)
from recoverscore.scoring.pyfunc_model import SERVING_PARAMS

if TYPE_CHECKING:
    import requests
    from matplotlib.figure import Figure

    from recoverscore.scoring.backtest import Backtest
    from recoverscore.scoring.batch import JobResult
    from recoverscore.scoring.pipeline import Scorer
    from recoverscore.scoring.policy_evaluation import PolicyEvaluation
    from recoverscore.training import TrainingResult

MODEL_NAME = "recoverscore"
EXPERIMENT = "recoverscore"
SCORING_EXPERIMENT = "recoverscore-scoring"
POLICY_EXPERIMENT = "recoverscore-policy-evaluation"
BACKTEST_EXPERIMENT = "recoverscore-backtest"
ALIASES = ("champion", "challenger")
OWN_ALIAS = re.compile(r"x-[a-z0-9][a-z0-9_-]{0,60}")
"""A team's own alias: ``x-`` and lower-case letters, digits, ``_`` or ``-`` (``x-shadow``)."""

# MLflow 3's UI opens an experiment on its GenAI traces unless told it holds model training: the
# experiment tag below says so (the UI reads it where its workflow switch is off), and the URL
# parameter is what MLflow 3.17's switch reads (otherwise each browser's last choice, GenAI by
# default), so every link recoverscore prints carries it.
KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
UI_VIEW = "workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"  # `mlflow ui --backend-store-uri sqlite:///mlflow.db`
NOTE_TAG = "mlflow.note.content"  # MLflow's description of an experiment or a run (Markdown)
_EXPERIMENT_NOTES = {
    EXPERIMENT: "Training runs of the recoverscore recovery model, one per `recoverscore train`; "
    "each registers a version of the model `recoverscore` (new versions become `@challenger`).",
    SCORING_EXPERIMENT: "Batch-scoring runs, one per `recoverscore score`: counts, tier mix, "
    "expected net value and drift from training, each linked to the model version it used.",
    POLICY_EXPERIMENT: "Off-policy evaluations, one per `recoverscore evaluate-policy`: each "
    "strategy's estimated value with its interval, from logged history without a new experiment.",
    BACKTEST_EXPERIMENT: "Backtests, one per `recoverscore backtest`: scored recommendations "
    "joined to the outcomes that followed, per cell and per tier, with bootstrap intervals.",
}
_MODEL_DESCRIPTION = (
    "Recovery likelihood of unpaid debts under each collection tier (soft reminder, mediation, "
    "payment order, litigation) with the recommended tier and its reasons. `recoverscore train` "
    "registers each version as `@challenger`; `recoverscore promote` moves `@champion`, which "
    "`recoverscore score` and `models:/recoverscore@champion` use. Each version's description "
    "and tags give its test AUC, its gap to the WoE scorecard, the training data's digest and "
    "decision dates, and the policy and cost settings it carries."
)
_MODEL_TAGS = {
    "task": "P(recover within 365 days) per collection tier, recommended tier, reasons",
    "aliases": "champion: used for scoring; challenger: the latest registration",
}

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
    """Hide deprecation noise MLflow's own internals raise (nothing a user can act on), and the
    notices MLflow prints rather than logs ("Successfully registered model ...") unless its
    logger is open for INFO: the ``mlflow`` logger's level is the one switch (the CLI sets it
    to WARNING unless ``--verbose``; a notebook may do the same)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The ``noload`` loader strategy is deprecated")
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        stream = logging_utils.MLFLOW_LOGGING_STREAM
        if logging.getLogger("mlflow").isEnabledFor(logging.INFO):
            yield
            return
        enabled, stream.enabled = stream.enabled, False
        try:
            yield
        finally:
            stream.enabled = enabled


def connect(uri: str | None = None) -> mlflow.MlflowClient:
    """Point MLflow's tracking and registry at ``uri`` (default ``tracking_uri()``) and check it.

    A server is probed with one short request and a SQLite file's folder must exist, so a wrong
    address fails in seconds with a one-line error instead of after MLflow's retry loop.
    """
    uri = uri or tracking_uri()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keeps logs readable
    # MLflow prints "View run ... at: <url>" for runs on a server, a link into its GenAI view;
    # recoverscore prints its own link, into the model-training view (``ui_link``).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
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
    """The experiment's id, creating it on first use, marked as model training (see ``UI_VIEW``).

    With a SQLite store the artifacts go to ``mlartifacts/`` beside the database file, not to
    MLflow's default ``./mlruns`` in whatever folder the command happened to run from. A
    description an analyst has edited is kept.
    """
    tags = {KIND_TAG: MODEL_TRAINING, NOTE_TAG: _EXPERIMENT_NOTES[name]}
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        for key, value in tags.items():
            if key not in experiment.tags:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id
    location = None
    path = _sqlite_path(uri) if uri.startswith("sqlite:") else None
    if path is not None:
        location = (path.resolve().parent / "mlartifacts").as_uri()
    return client.create_experiment(name, artifact_location=location, tags=tags)


def ui_link(page: str, uri: str | None = None) -> str:
    """The MLflow UI address of ``page`` (``experiments/1/runs/<id>``) in its model-training
    view. Without ``uri``, the part after the UI's address (what links in descriptions use, so
    they work whatever address the UI is opened at); with it, the full address: the tracking
    server's, or where ``mlflow ui`` serves a local store by default (``LOCAL_UI``)."""
    if uri is None:
        return f"#/{page}?{UI_VIEW}"
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else LOCAL_UI
    return f"{base}/#/{page}?{UI_VIEW}"


def run_link(run_id: str, uri: str | None = None) -> str:
    """The MLflow UI address of a run, in the model-training view (see ``ui_link``)."""
    uri = uri or tracking_uri()
    try:
        experiment = connect(uri).get_run(run_id).info.experiment_id
    except MlflowException as error:
        raise RecoverscoreError(f"no MLflow run {run_id}: {_first_line(error)}") from None
    return ui_link(f"experiments/{experiment}/runs/{run_id}", uri)


def _count(rows: int) -> str:
    """A row count as a run name says it: 950, 1.5k, 200k, 1.2M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if rows >= size:
            return f"{rows / size:.3g}{suffix}"
    return str(rows)


def _last_date(dates: str | None) -> str:
    """The last of ``2026-01-31 to 2026-06-30`` (or the one date), else today (UTC)."""
    return dates.split(" to ")[-1] if dates else f"{pd.Timestamp.now(tz='UTC'):%Y-%m-%d}"


def training_run_name(package: ModelPackage) -> str:
    """``train 2026-06-30 200k rows``: the history's last decision date and its size."""
    rows = package.metadata.get("data_rows") or package.metadata.get("training_rows")
    date = _last_date(package.metadata.get("decision_dates"))
    return f"train {date} {_count(int(rows))} rows" if rows else f"train {date}"


def scoring_run_name(decision_dates: str | None, input_name: str | None) -> str:
    """``score 2026-11-24 portfolio.csv``: the decision date and the input's file name."""
    return " ".join(part for part in ("score", _last_date(decision_dates), input_name) if part)


def version_notes(package: ModelPackage, metrics: dict[str, float]) -> tuple[str, dict[str, str]]:
    """A registered version's description (Markdown) and tags, from its package's metadata:
    what an analyst compares versions by on the registry pages."""
    meta = package.metadata
    tags: dict[str, str] = {}
    lines = []
    test, card = meta.get("test_auc"), meta.get("scorecard_auc")
    if test is not None and card is not None:
        gap = float(test) - float(card)
        tags |= {
            "test_auc": f"{test:.4f}",
            "scorecard_auc": f"{card:.4f}",
            "auc_vs_scorecard": f"{gap:+.4f}",
        }
        side = "above" if gap >= 0 else "below"
        line = f"Test AUC {test:.4f}, {abs(gap):.4f} {side} the WoE scorecard ({card:.4f})"
        if "bayes_limit_auc" in metrics:
            line += f"; Bayes limit {metrics['bayes_limit_auc']:.4f}"
        lines.append(line + ".")
    window = meta.get("decision_dates") or "undated"
    tags["training_window"] = window
    if "training_rows" in meta:
        tags["training_rows"] = str(meta["training_rows"])
        kind = str(meta.get("kind", package.model.kind_))
        tags["kind"] = kind
        of = f" of a {int(meta['data_rows']):,}-row history" if "data_rows" in meta else ""
        lines.append(
            f"{kind} fitted on {int(meta['training_rows']):,} rows{of}; decision dates {window}."
        )
    tags["policy"] = settings_digest(package.policy)
    digest = str(meta.get("data_digest") or "")
    if digest:
        tags["data_digest"] = digest
    lines.append(
        f"Data digest `{digest[:16] or 'none'}`; policy {tags['policy']}; costs "
        f"{settings_digest(package.costs)}; package {package.label}."
    )
    return "\n\n".join(lines), tags


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
    """The outputs and serving params inferred from the example; no input schema.

    The pyfunc parses and checks every cell against the model's contract itself, naming rows,
    columns and checks but never values, and the contract is logged with the model
    (``schema/input_contract.md``; ``recoverscore schema --model``). MLflow's own enforcement
    would refuse a bad cell or a missing column first, with an error that quotes the request's
    rows (debtor ids, amounts) or the offending value; even with every column typed ``Any`` and
    optional it walked each column of each request, about 3 ms of a served debtor's 10.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        inferred = infer_signature(example, output, params=SERVING_PARAMS)
    return ModelSignature(inputs=None, outputs=inferred.outputs, params=inferred.params)


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
        marker = requirement.marker
        if marker is not None and not marker.evaluate({"extra": ""}):
            continue  # the test and server extras; uvloop on Windows (not installed there)
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        where = f"; {marker}" if marker is not None else ""  # uvloop: never on Windows
        pinned.append(f"{requirement.name}{extras}=={package_version(requirement.name)}{where}")
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


def _training_dataset(result: TrainingResult, name: str | None, digest: str):
    """The training data as an MLflow dataset: its digest, schema and row count, no rows.

    MLflow stores a pandas dataset's name, digest, source, schema and profile (row and cell
    counts), never its values; the source is the file's name, not its path.
    """
    label = name or "training data"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        # MLflow registers its local-file source twice and says so: the same source either way
        warnings.filterwarnings("ignore", message="The specified dataset source can be interp")
        dataset = mlflow.data.from_pandas(
            result.data.frame, source=label, name=label, digest=digest[:16] or None
        )
        dataset.schema  # noqa: B018 - inferred now, inside the filter
    return dataset


def log_training(
    package_dir: Path,
    result: TrainingResult | None = None,
    params: dict[str, object] | None = None,
    uri: str | None = None,
    data_name: str | None = None,
) -> RegisteredModel:
    """Log one training run and register its saved package as the new ``challenger``.

    The run (named ``train <last decision date> <rows> rows``) holds settings, metrics, plots in
    English and Chinese (``plots/zh/``), aggregate tables, the input contract and the training
    data as an MLflow dataset (digest, schema and size only; ``data_name`` is the file's name).
    Tables keyed by debtor are refused: nothing row-level goes to a tracking server that others
    may read. The registered version gets a description and tags to compare versions by (test
    AUC, gap to the scorecard, data digest, decision dates, policy and costs); the registered
    model a description. Without a ``result`` (a package trained elsewhere) the run holds the
    package and its contract only.
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
    run_name = training_run_name(package)
    try:
        experiment_id = _experiment_id(client, uri)
        with tempfile.TemporaryDirectory() as staging:
            staged = Path(staging) / "package"  # always artifacts/package inside the model
            staged.mkdir()
            for name in _PACKAGE_FILES:
                if (package_dir / name).is_file():  # a scorecard has no model.txt
                    shutil.copy2(package_dir / name, staged / name)
            with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
                if params:
                    mlflow.log_params(_flatten(params))
                if metrics:
                    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
                if result is not None:
                    dataset = _training_dataset(result, data_name, data_digest)
                    mlflow.log_input(dataset, context="training")
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
        _describe_version(client, model_version, package, metrics, run.info.run_id)
    except MlflowException as error:
        raise RecoverscoreError(
            f"logging to MLflow at {uri} failed: {_first_line(error)}"
        ) from error
    return RegisteredModel(
        run_id=run.info.run_id,
        version=model_version,
        model_uri=f"models:/{MODEL_NAME}/{model_version}",
    )


def _describe_version(
    client: mlflow.MlflowClient,
    version: str,
    package: ModelPackage,
    metrics: dict[str, float],
    run_id: str,
) -> None:
    """Descriptions and tags on the registered model (where an analyst has not written their
    own), the new version and its run."""
    model = client.get_registered_model(MODEL_NAME)
    if not model.description:
        client.update_registered_model(MODEL_NAME, description=_MODEL_DESCRIPTION)
    for key, value in _MODEL_TAGS.items():
        if key not in model.tags:
            client.set_registered_model_tag(MODEL_NAME, key, value)
    description, tags = version_notes(package, metrics)
    client.update_model_version(MODEL_NAME, version, description=description)
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    page = ui_link(f"models/{MODEL_NAME}/versions/{version}")
    client.set_tag(
        run_id,
        NOTE_TAG,
        f"Registered as [{MODEL_NAME} version {version}]({page}) (`@challenger`).\n\n{description}",
    )


def version_string() -> str:
    """The installed recoverscore version, recorded on every run."""
    try:
        return package_version("recoverscore")
    except PackageNotFoundError:
        return "unknown"


# --- the registry ---------------------------------------------------------------------------------


def is_alias(name: str) -> bool:
    """Whether ``name`` is an alias recoverscore allows (see the module docstring)."""
    return name in ALIASES or OWN_ALIAS.fullmatch(name) is not None


def check_alias(name: str) -> str:
    """``name`` if it is an allowed alias; otherwise a one-line error with the closest one."""
    if is_alias(name):
        return name
    close = difflib.get_close_matches(name, ALIASES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise RecoverscoreError(
        f"{name!r} is not an alias: {hint}use {' or '.join(ALIASES)}, or a name of your own "
        "starting with x- (e.g. x-shadow)"
    )


def promote(version: str | int, alias: str = "champion", uri: str | None = None) -> str:
    """Point ``alias`` (by default ``champion``, what scoring uses) at a registered version.

    ``version`` is a number or another alias (``promote("challenger")`` crowns the challenger).
    Returns the version number promoted.
    """
    check_alias(alias)
    client = connect(uri)
    ref = str(version).strip()
    try:
        if ref.isdigit():
            number = str(client.get_model_version(MODEL_NAME, ref).version)
        elif is_alias(ref):
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


def delete_alias(alias: str, uri: str | None = None) -> str:
    """Remove ``alias`` from the registered model; returns the version it pointed at.

    The version itself stays registered. Removing ``champion`` leaves scoring without a default
    model until another is promoted, which is the point when a champion must be withdrawn.
    """
    check_alias(alias)
    client = connect(uri)
    try:
        number = str(client.get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException:
        raise RecoverscoreError(f"model {MODEL_NAME} has no alias {alias!r}") from None
    client.delete_registered_model_alias(MODEL_NAME, alias)
    return number


def resolve_model_uri(ref: str) -> str:
    """An MLflow model URI from ``champion``, ``challenger``, a version number or a URI."""
    ref = str(ref).strip()
    if is_alias(ref):
        return f"models:/{MODEL_NAME}@{ref}"
    if ref.isdigit():
        return f"models:/{MODEL_NAME}/{int(ref)}"
    if ref.startswith(("models:/", "runs:/")):
        return ref
    raise RecoverscoreError(
        f"unknown model reference {ref!r}: use a package folder, {' or '.join(ALIASES)} (or "
        "an x- alias of your own), a version number, or a models:/ or runs:/ URI"
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


def scoring_metrics(result: JobResult) -> dict[str, float]:
    """The figures of one batch-scoring run: counts, speed, tier shares, value, PSI, and the
    drift summary (largest PSI, drifted and moderate column counts)."""
    stats = result.stats
    metrics = {
        "rows_in": stats["rows_in"],
        "rows_scored": stats["scored"],
        "rows_rejected": stats["rejected"],
        "seconds": result.seconds,
        "rows_per_second": stats["rows_in"] / max(result.seconds, 1e-9),
    }
    if result.drift is not None:
        from recoverscore.scoring import drift

        overview = drift.summary(result.drift)
        if overview["psi_max"] is not None:
            metrics["psi_max"] = overview["psi_max"]
        metrics["drifted_columns"] = overview["n_drifted"]
        metrics["moderate_columns"] = overview["n_moderate"]
    for tier, n in stats["tiers"].items():
        metrics[f"share_{tier}"] = n / stats["scored"] if stats["scored"] else 0.0
        metrics[f"net_value_{tier}"] = stats["net_value"][tier]
    if result.drift is not None:
        for row in result.drift.dropna(subset=["psi"]).itertuples(index=False):
            metrics[f"psi_{row.group}_{row.column}"] = row.psi
    return metrics


def log_scoring(
    result: JobResult,
    scorer: Scorer,
    model_uri: str,
    engine: str,
    uri: str | None = None,
    input_name: str | None = None,
) -> str:
    """Log one batch-scoring run (aggregates only) to its own experiment; returns the run id.

    Named ``score <decision date> <input file name>``; counts, tier mix, PSI with the drift
    summary and the PSI chart in English and Chinese go in; no row, id or file path does. A
    registered model's run is linked to its version: tags, the model as the run's input, and a
    link in the run's description.
    """
    from recoverscore.modelling.plotting import figure_name
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
    dates = decision_dates_text(stats)
    version = scorer.label
    registered = model_uri.startswith("models:/") and version.isdigit()
    tags = {"kind": "scoring", "recoverscore": version_string()}
    lines = [
        f"{stats['rows_in']:,} rows in, {stats['scored']:,} scored, {stats['rejected']:,} "
        f"rejected; decision dates {dates or 'none'}."
    ]
    if registered:
        page = ui_link(f"models/{MODEL_NAME}/versions/{version}")
        lines.insert(0, f"Scored with [{MODEL_NAME} version {version}]({page}).")
        tags |= {"model_name": MODEL_NAME, "model_version": version}
    else:
        lines.insert(0, f"Scored with an unregistered package ({version}).")
    if result.drift is not None:
        tables["psi"] = result.drift
        figures = {
            figure_name("psi", language): drift.psi_figure(result.drift, language=language)
            for language in ("en", "zh")
        }
        report = json.loads(result.report.read_text(encoding="utf-8"))
        tags["drift"] = drift.headline(result.drift)[:MAX_PARAM_VAL_LENGTH]
        lines.append(f"Drift from training: {tags['drift']}.")
    params = {
        "model_version": version,
        "model_uri": model_uri if model_uri.startswith("models:/") else "local package",
        **scorer.options.describe(),
        "as_of": dates,
        "input": input_name or "",
        "overrides": ";".join(scorer.package.overrides.values()) or "none",
        "experiment": getattr(scorer.package.policy.experiment, "name", "none"),
        "explainer": scorer.package.model.explainer if scorer.options.explain else "none",
        "engine": engine,
    }
    run = _Run(
        name=scoring_run_name(dates, input_name),
        params=params,
        metrics=scoring_metrics(result),
        tags={**tags, NOTE_TAG: "\n\n".join(lines)},
        tables=tables,
        figures=figures,
        report=report,
        model_version=version if registered else None,
    )
    return _log_run(SCORING_EXPERIMENT, run, uri)


def log_policy_evaluation(
    evaluation: PolicyEvaluation, loaded: LoadedPackage, uri: str | None = None
) -> str:
    """Log off-policy estimates (aggregates only) to their own experiment; returns the run id."""
    from recoverscore.strategy.logging_policy import overlap_figure

    run = _Run(
        name=f"evaluate-policy {evaluation.rows:,} debts",
        params={
            "model_version": loaded.version,
            "propensities": evaluation.propensity_source,
            "rows": evaluation.rows,
            "rejected": evaluation.rejected,
        },
        metrics={
            f"{row.estimator}_{row.reward}_{row.policy}": float(row.estimate)
            for row in evaluation.table.itertuples(index=False)
            if row.reliable
        },
        tags={"kind": "policy-evaluation", "recoverscore": version_string()},
        tables={"off_policy": evaluation.table, "overlap": evaluation.overlap.table},
        figures={"overlap": overlap_figure(evaluation.overlap, "en")},
        report=None,
        model_version=loaded.version if loaded.version.isdigit() else None,
    )
    return _log_run(POLICY_EXPERIMENT, run, uri)


def log_backtest(
    backtest: Backtest,
    loaded: LoadedPackage | None = None,
    settings: dict[str, object] | None = None,
    uri: str | None = None,
) -> str:
    """Log a backtest (aggregates only) to its own experiment; returns the run id.

    Linked to the model versions that scored the debts (``model_version``) and, when given, to
    the package whose training figures it was set against. Tables by tier, decile and cell,
    the cell comparison and the plots go in; the joined rows, with their ids, never do.
    """
    params = {
        "model_version": ",".join(backtest.model_versions),
        "reference_model": "none" if loaded is None else loaded.version,
        "champion_cell": backtest.champion,
        "scored_runs": backtest.counts["runs"],
        **(settings or {}),
    }
    tables = {
        "quality": backtest.quality.reset_index(),
        "by_tier": backtest.by_tier.reset_index(),
        "by_decile": backtest.by_decile.reset_index(),
        "by_cell": backtest.by_cell.reset_index(),
        "cell_comparison": backtest.comparison.reset_index(),
        "messages": pd.DataFrame(
            {
                "kind": ["warning"] * len(backtest.warnings) + ["note"] * len(backtest.notes),
                "text": backtest.warnings + backtest.notes,
            }
        ),
    }
    versions = [v for v in backtest.model_versions if v.isdigit()]
    run = _Run(
        name=f"backtest {backtest.counts['runs']} scored runs",
        params=params,
        metrics=backtest.metrics(),
        tags={"kind": "backtest", "recoverscore": version_string()},
        tables=tables,
        figures=backtest.figures(),
        report=None,
        model_version=versions[-1] if len(versions) == 1 else None,
    )
    return _log_run(BACKTEST_EXPERIMENT, run, uri)


def _logged_model_id(version: ModelVersion) -> str | None:
    """The id of the logged model a registered version holds (MLflow 3 gives it as the
    version's ``model_id``, or only in its source ``models:/<model id>``)."""
    if version.model_id:
        return version.model_id
    source = str(version.source or "")
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


@dataclass
class _Run:
    """Everything one run of aggregates logs (a scoring run, a policy evaluation, a backtest)."""

    name: str
    params: dict[str, object]
    metrics: dict[str, float]
    tags: dict[str, str]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    report: dict | None
    model_version: str | None


def _log_run(experiment: str, run: _Run, uri: str | None) -> str:
    """Log one run of aggregates to ``experiment``; returns the run id.

    Tables keyed by debtor are refused as in ``log_training``. A registered version becomes the
    run's model input, which MLflow shows on the run's page.
    """
    personal = sorted(name for name, table in run.tables.items() if "debtor_id" in table.columns)
    if personal:
        raise RecoverscoreError(f"tables {personal} have a debtor_id column; log aggregates only")
    uri = uri or tracking_uri()
    client = connect(uri)
    try:
        experiment_id = _experiment_id(client, uri, experiment)
        model_id = None
        if run.model_version is not None:
            model_id = _logged_model_id(client.get_model_version(MODEL_NAME, run.model_version))
        with mlflow.start_run(experiment_id=experiment_id, run_name=run.name) as active:
            mlflow.log_params(_flatten(run.params))
            mlflow.log_metrics({k: float(v) for k, v in run.metrics.items()})
            for name, table in run.tables.items():
                mlflow.log_text(table.to_csv(index=False), f"tables/{name}.csv")
            for name, figure in run.figures.items():
                mlflow.log_figure(figure, f"plots/{name}.png")
            if run.report is not None:
                mlflow.log_dict(run.report, "drift_report.json")
            mlflow.set_tags(run.tags)
            if model_id:
                client.log_inputs(active.info.run_id, models=[LoggedModelInput(model_id)])
    except MlflowException as error:
        raise RecoverscoreError(
            f"logging to MLflow at {uri} failed: {_first_line(error)}"
        ) from error
    return active.info.run_id
