"""The MLflow edge against a throwaway SQLite store: registration, aliases, loading, privacy."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from mlflow.pyfunc.scoring_server import predictions_to_json
from packaging.requirements import Requirement
from typer.testing import CliRunner

from recoverscore import registry, score
from recoverscore.cli import app
from recoverscore.data import schemas
from recoverscore.data.synthetic import generate_frame
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.evaluate import Evaluation
from recoverscore.modelling.model import TrainingData, load_train_config
from recoverscore.scoring import drift
from recoverscore.scoring.package import ModelPackage, settings_digest
from recoverscore.training import TrainingResult

AS_OF = "2026-06-30"
PROBABILITIES = [schemas.probability_column(t) for t in schemas.TIERS]
PICKLES = {".pkl", ".pickle", ".joblib", ".cloudpickle"}
METADATA = {  # what training.train records in a package
    "data_digest": "sha256:0123abcd",
    "data_rows": 3000,
    "decision_dates": "2026-01-31 to 2026-06-30",
    "training_rows": 2400,
    "test_auc": 0.78,
    "scorecard_auc": 0.7512,
    "kind": "lightgbm",
}


def _aliases(client: mlflow.MlflowClient) -> dict[str, list[str]]:
    """Aliases per version (MLflow's version search leaves ``aliases`` empty, so not from it)."""
    versions = client.search_model_versions(f"name = '{registry.MODEL_NAME}'")
    owners = client.get_registered_model(registry.MODEL_NAME).aliases
    return {
        str(mv.version): sorted(a for a, v in owners.items() if str(v) == str(mv.version))
        for mv in versions
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One small model registered twice, then version 1 promoted, in a fresh SQLite store.

    Alias states are recorded after each step so the lifecycle can be checked without tests
    depending on each other's order.
    """
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_REGISTRY_URI", uri)  # mlflow.set_registry_uri exports it: restore it
        mp.chdir(root)  # anything MLflow writes relative to the working folder lands in root
        history = generate_frame(3000, seed=1, as_of=AS_OF)
        cfg = load_train_config()
        # one thread: OpenMP spin-waiting makes a 2-thread fit crawl on a busy 2-core machine
        model = cfg.estimator().set_params(kind="lightgbm", num_threads=1)
        model.fit(history, history["recovered"].to_numpy(int))
        built = ModelPackage.build(model, training=history, metadata=METADATA)
        package = built.save(root / "pkg")
        figure = Figure()
        figure.subplots().plot([0, 1], [0, 1])
        params = {"train": cfg.model_dump(), "rows": len(history)}

        def result(test_auc: float, tables: dict | None = None) -> TrainingResult:
            evaluation = Evaluation(
                {"test_auc": test_auc, "test_log_loss": 0.6},
                tables=tables or {"importance": model.feature_importance()},
                figures={"calibration": figure, "zh/calibration": figure},
            )
            data = TrainingData(history, history["recovered"].to_numpy(int), history.iloc[:0])
            return TrainingResult(built, evaluation, data)

        first = registry.log_training(package, result(0.71), params, data_name="history.parquet")
        client = mlflow.MlflowClient()
        after_first = _aliases(client)
        second = registry.log_training(package, result(0.73), params, data_name="history.parquet")
        after_second = _aliases(client)
        registry.promote(first.version)
        after_promote = _aliases(client)
        yield SimpleNamespace(
            root=root,
            uri=uri,
            package=package,
            config=cfg,
            history=history,
            first=first,
            second=second,
            result=result,
            after_first=after_first,
            after_second=after_second,
            after_promote=after_promote,
        )
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


@pytest.fixture(scope="module")
def champion_dir(store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The champion's model folder as the registry stores it."""
    out = tmp_path_factory.mktemp("champion")
    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=registry.resolve_model_uri("champion"), dst_path=str(out)
        )
    )


def _portfolio(rows: int = 50, seed: int = 7) -> pd.DataFrame:
    frame = generate_frame(rows, seed=seed, as_of=AS_OF)
    return frame[list(schemas.Portfolio.to_schema().columns)]


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO strings and booleans as words, as a CSV reader or a JSON request gives them."""
    out = frame.copy()
    for name, kind in schemas.column_kinds(schemas.Portfolio).items():
        if kind == "date":
            out[name] = [None if pd.isna(d) else d.strftime("%Y-%m-%d") for d in frame[name]]
        elif kind == "bool":
            out[name] = [None if pd.isna(v) else str(bool(v)).lower() for v in frame[name]]
    return out


# --- registration and aliases ---------------------------------------------------------------------


def test_registration_moves_challenger_and_promote_sets_champion(store):
    assert (store.first.version, store.second.version) == ("1", "2")
    assert store.first.model_uri == "models:/recoverscore/1"
    assert store.after_first == {"1": ["challenger"]}
    assert store.after_second == {"1": [], "2": ["challenger"]}
    assert store.after_promote == {"1": ["champion"], "2": ["challenger"]}


def test_describe_versions_lists_both(store):
    table = registry.describe_versions()
    assert table.columns.tolist() == ["version", "aliases", "run_id", "created", "test_auc"]
    assert table["version"].tolist() == ["1", "2"]
    assert table["aliases"].tolist() == ["champion", "challenger"]
    assert table["run_id"].tolist() == [store.first.run_id, store.second.run_id]
    assert table["test_auc"].tolist() == [0.71, 0.73]


def test_an_alias_typo_is_refused_and_an_alias_can_be_deleted(store):
    """Issue 13, U2: a mistyped alias never quietly becomes a new one, and `alias delete`
    removes an alias while its version stays registered."""
    client = mlflow.MlflowClient()
    typo = CliRunner().invoke(app, ["promote", "2", "--alias", "champoin"])
    assert typo.exit_code == 2 and "did you mean 'champion'?" in typo.output, typo.output
    with pytest.raises(RecoverscoreError, match="is not an alias"):
        registry.promote("2", "Champion")
    assert set(client.get_registered_model(registry.MODEL_NAME).aliases) == {
        "champion",
        "challenger",
    }
    assert registry.promote("2", "x-shadow") == "2"
    assert registry.resolve_model_uri("x-shadow") == "models:/recoverscore@x-shadow"
    deleted = CliRunner().invoke(app, ["alias", "delete", "x-shadow"])
    assert deleted.exit_code == 0 and "version 2, which stays registered" in deleted.output
    assert "x-shadow" not in client.get_registered_model(registry.MODEL_NAME).aliases
    again = CliRunner().invoke(app, ["alias", "delete", "x-shadow"])
    assert again.exit_code == 2 and "has no alias 'x-shadow'" in again.output
    wrong = CliRunner().invoke(app, ["alias", "delete", "champoin"])
    assert wrong.exit_code == 2 and "is not an alias" in wrong.output
    assert registry.describe_versions()["version"].tolist() == ["1", "2"]


def test_artifacts_stay_beside_the_database(store):
    assert (store.root / "mlartifacts").is_dir()
    assert not (store.root / "mlruns").exists()


def test_run_records_digest_plots_tables_and_schema(store):
    run = mlflow.MlflowClient().get_run(store.first.run_id)
    assert run.data.tags["data_digest"] == "sha256:0123abcd"
    leaves = store.config.model.lightgbm.num_leaves
    assert run.data.params["train.model.lightgbm.num_leaves"] == str(leaves)
    assert run.data.params["rows"] == "3000"
    assert run.data.metrics["test_auc"] == 0.71
    logged = {
        f.path
        for folder in ("plots", "plots/zh", "tables", "schema")
        for f in mlflow.MlflowClient().list_artifacts(store.first.run_id, folder)
        if not f.is_dir
    }
    assert logged == {
        "plots/calibration.png",
        "plots/zh/calibration.png",  # the Chinese plot beside the English one
        "tables/importance.csv",
        "schema/input_contract.md",
    }


# --- what an analyst reads in the MLflow UI -------------------------------------------------------


def test_experiments_open_as_model_training_and_say_what_they_hold(store):
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(registry.EXPERIMENT)
    assert experiment.tags[registry.KIND_TAG] == "custom_model_development"
    assert "recoverscore train" in experiment.tags[registry.NOTE_TAG]
    client.set_experiment_tag(experiment.experiment_id, registry.NOTE_TAG, "our team's notes")
    registry._experiment_id(client, store.uri)  # a later run keeps what an analyst wrote
    kept = client.get_experiment(experiment.experiment_id).tags[registry.NOTE_TAG]
    assert kept == "our team's notes"


def test_training_run_is_named_by_its_data_and_records_the_dataset(store):
    run = mlflow.MlflowClient().get_run(store.first.run_id)
    assert run.info.run_name == "train 2026-06-30 3k rows"
    (used,) = run.inputs.dataset_inputs
    assert used.dataset.name == "history.parquet"  # the file's name, never its path
    assert json.loads(used.dataset.source) == {"uri": "history.parquet"}
    assert used.dataset.digest == METADATA["data_digest"][:16]
    assert json.loads(used.dataset.profile)["num_rows"] == len(store.history)
    columns = {c["name"] for c in json.loads(used.dataset.schema)["mlflow_colspec"]}
    assert columns == set(store.history.columns)
    assert [t.value for t in used.tags] == ["training"]


def test_versions_carry_what_an_analyst_compares_them_by(store):
    client = mlflow.MlflowClient()
    version = client.get_model_version(registry.MODEL_NAME, store.first.version)
    package = ModelPackage.load(store.package)
    assert version.tags == {
        "test_auc": "0.7800",
        "scorecard_auc": "0.7512",
        "auc_vs_scorecard": "+0.0288",
        "training_window": "2026-01-31 to 2026-06-30",
        "training_rows": "2400",
        "kind": "lightgbm",
        "policy": settings_digest(package.policy),
        "data_digest": "sha256:0123abcd",
    }
    assert version.description.startswith(
        "Test AUC 0.7800, 0.0288 above the WoE scorecard (0.7512)."
    )
    assert "2,400 rows of a 3,000-row history; decision dates 2026-01-31 to 2026-06-30" in (
        version.description
    )
    model = client.get_registered_model(registry.MODEL_NAME)
    assert "@champion" in model.description and model.tags["task"]
    client.update_registered_model(registry.MODEL_NAME, description="our notes")
    registry._describe_version(client, store.first.version, package, {}, store.first.run_id)
    assert client.get_registered_model(registry.MODEL_NAME).description == "our notes"
    note = client.get_run(store.second.run_id).data.tags[registry.NOTE_TAG]
    page = f"(#/models/recoverscore/versions/{store.second.version}?workflowType=machine_learning)"
    assert note.startswith(f"Registered as [recoverscore version {store.second.version}]{page}")


def test_a_scorecard_below_the_model_and_an_undated_history_read_plainly(store):
    package = ModelPackage.load(store.package)
    package = replace(package, metadata={"test_auc": 0.70, "scorecard_auc": 0.72})
    description, tags = registry.version_notes(package, {"bayes_limit_auc": 0.8})
    assert description.startswith(
        "Test AUC 0.7000, 0.0200 below the WoE scorecard (0.7200); Bayes limit 0.8000."
    )
    assert tags["auc_vs_scorecard"] == "-0.0200" and tags["training_window"] == "undated"
    assert "data_digest" not in tags


@pytest.mark.parametrize(
    ("rows", "shown"),
    [(950, "950"), (1_000, "1k"), (1_500, "1.5k"), (200_000, "200k"), (1_234_567, "1.23M")],
)
def test_run_names_say_the_date_and_the_size(store, rows, shown):
    package = replace(
        ModelPackage.load(store.package),
        metadata={"data_rows": rows, "decision_dates": "2026-01-31 to 2026-06-30"},
    )
    assert registry.training_run_name(package) == f"train 2026-06-30 {shown} rows"
    assert (
        registry.scoring_run_name("2026-11-01 to 2026-11-24", "portfolio.csv")
        == "score 2026-11-24 portfolio.csv"
    )


def test_ui_links_open_the_model_training_view():
    page = "models/recoverscore/versions/2"
    assert registry.ui_link(page) == f"#/{page}?workflowType=machine_learning"
    server = registry.ui_link(page, "http://mlflow.internal:5000/")
    assert server == f"http://mlflow.internal:5000/#/{page}?workflowType=machine_learning"
    local = registry.ui_link(page, "sqlite:///mlflow.db")
    assert local == f"{registry.LOCAL_UI}/#/{page}?workflowType=machine_learning"


# --- scoring runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scoring_run(store, tmp_path_factory):
    """The champion scoring a CSV through the batch job, logged as a scoring run."""
    from recoverscore.scoring import batch
    from recoverscore.scoring.pipeline import Scorer, ScoringOptions

    folder = tmp_path_factory.mktemp("scoring")
    frame = _portfolio(rows=200, seed=5)
    frame.loc[frame.index[:60], "as_of"] = pd.Timestamp("2026-07-31")
    frame.to_csv(folder / "portfolio.csv", index=False)
    loaded = registry.load_package("champion")
    options = ScoringOptions(explain=False)
    scorer = Scorer(loaded.package, options, "1")
    result = batch.run(folder / "portfolio.csv", folder / "scored.csv", scorer)
    run_id = registry.log_scoring(result, scorer, loaded.uri, "local", input_name="portfolio.csv")
    return SimpleNamespace(
        run=mlflow.MlflowClient().get_run(run_id), result=result, frame=frame, folder=folder
    )


def test_scoring_run_is_named_and_linked_to_its_version(store, scoring_run):
    run = scoring_run.run
    assert run.info.run_name == "score 2026-07-31 portfolio.csv"  # the last decision date
    assert run.data.params["as_of"] == "2026-06-30 to 2026-07-31"
    assert run.data.tags["model_version"] == "1" and run.data.tags["kind"] == "scoring"
    note = run.data.tags[registry.NOTE_TAG]
    page = "#/models/recoverscore/versions/1?workflowType=machine_learning"
    assert note.startswith(f"Scored with [recoverscore version 1]({page}).")
    assert "200 rows in, 200 scored, 0 rejected" in note
    version = mlflow.MlflowClient().get_model_version(registry.MODEL_NAME, "1")
    assert [m.model_id for m in run.inputs.model_inputs] == [registry._logged_model_id(version)]
    assert registry.run_link(run.info.run_id) == (
        f"{registry.LOCAL_UI}/#/experiments/{run.info.experiment_id}/runs/"
        f"{run.info.run_id}?workflowType=machine_learning"
    )
    with pytest.raises(RecoverscoreError, match="no MLflow run"):
        registry.run_link("0" * 32)


def test_scoring_run_summarises_drift(scoring_run):
    metrics, drift_table = scoring_run.run.data.metrics, scoring_run.result.drift
    assert metrics["psi_max"] == pytest.approx(drift_table["psi"].max())
    assert metrics["drifted_columns"] == (drift_table["status"] == "drift").sum()
    assert metrics["moderate_columns"] == (drift_table["status"] == "moderate").sum()
    assert scoring_run.run.data.tags["drift"] == drift.headline(drift_table)
    logged = {
        f.path
        for folder in ("plots", "plots/zh")
        for f in mlflow.MlflowClient().list_artifacts(scoring_run.run.info.run_id, folder)
        if not f.is_dir
    }
    assert logged == {"plots/psi.png", "plots/zh/psi.png"}


def test_scoring_run_holds_no_debtor_id_and_no_path(scoring_run):
    run = scoring_run.run
    recorded = " ".join([*run.data.params.values(), *run.data.tags.values(), run.info.run_name])
    assert not [i for i in scoring_run.frame["debtor_id"] if i in recorded]
    assert str(scoring_run.folder) not in recorded


# --- the served model ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["typed", "iso-strings", "csv-text"])
def test_pyfunc_returns_what_score_returns(store, form, tmp_path):
    frame = _portfolio()
    rows = frame
    if form == "iso-strings":
        rows = _as_text(frame)
    elif form == "csv-text":  # what a CSV reader gives without types: every cell text
        frame.to_csv(tmp_path / "portfolio.csv", index=False)
        rows = pd.read_csv(tmp_path / "portfolio.csv", dtype=str)
        assert (rows.dtypes != "float64").all() and isinstance(rows.loc[0, "principal"], str)
    served = mlflow.pyfunc.load_model("models:/recoverscore@champion")
    out = served.predict(rows, params={"top_k": 2})
    expected = score(frame, ModelPackage.load(store.package), top_k=2, version="1")
    assert out.columns.tolist() == list(schemas.Scored.to_schema().columns)
    assert (out["model_version"] == "1").all()  # the registry version, as batch scoring says
    assert out["as_of"].tolist() == [AS_OF] * len(frame)
    pd.testing.assert_frame_equal(
        out.drop(columns="as_of"), expected.drop(columns="as_of"), check_exact=True
    )


def test_signature_leaves_types_and_columns_to_the_contract(champion_dir, store):
    info = mlflow.models.get_model_info(str(champion_dir))
    assert info.signature.inputs is None  # no enforcement by MLflow: the contract checks cells
    assert "recommended_tier" in info.signature.outputs.input_names()
    assert {p.name for p in info.signature.params.params} >= {"explain", "language", "policy"}
    frame = _as_text(_portfolio(rows=3)).drop(columns=["principal"])
    served = mlflow.pyfunc.load_model("models:/recoverscore@champion")
    with pytest.raises(mlflow.exceptions.MlflowException) as caught:
        served.predict(frame)
    message = caught.value.message
    assert "principal" in message and "\n" not in message and len(message) < 400
    assert not [i for i in frame["debtor_id"] if i in message]


def test_pyfunc_params_switch_explanations_and_language(store):
    served = mlflow.pyfunc.load_model("models:/recoverscore@champion")
    quiet = served.predict(_portfolio(rows=5), params={"explain": False, "policy": "matrix"})
    assert quiet["top_reasons"].isna().all()
    chinese = served.predict(_portfolio(rows=5), params={"language": "zh"})
    assert chinese["top_reasons"].str.contains(r"[\u4e00-\u9fff]").all()


@pytest.mark.parametrize(
    "params", [{"explain": False}, {"language": "zh", "policy": "matrix", "top_k": 1}]
)
def test_served_answer_is_the_json_pandas_would_give(store, params):
    served = mlflow.pyfunc.load_model("models:/recoverscore@champion")
    out = served.predict(_as_text(_portfolio(rows=6)), params=params)
    assert out.isna().any().any()  # missing values too: None in some columns, NaN in others
    ours, pandas = io.StringIO(), io.StringIO()
    predictions_to_json(out, ours)  # what the scoring server sends
    predictions_to_json(pd.DataFrame(out), pandas)  # pandas' own to_dict(orient="records")
    assert ours.getvalue() == pandas.getvalue()
    records, reference = out.to_dict(orient="records"), pd.DataFrame(out).to_dict("records")
    assert [[type(v) for v in r.values()] for r in records] == [
        [type(v) for v in r.values()] for r in reference
    ]
    assert type(out.drop(columns="why")) is pd.DataFrame  # only the answer itself is special


def test_pyfunc_rejects_unreadable_cells_in_one_line(store):
    frame = _as_text(_portfolio(rows=5))
    frame.loc[2, "due_date"] = "last spring"
    served = mlflow.pyfunc.load_model("models:/recoverscore@champion")
    with pytest.raises(
        mlflow.exceptions.MlflowException, match="row 3: due_date: parse as date"
    ) as caught:
        served.predict(frame)
    assert "\n" not in caught.value.message and "last spring" not in caught.value.message


def _probabilities(ref: str, frame: pd.DataFrame) -> pd.DataFrame:
    return registry.load_package(ref).package.model.tier_probabilities(frame)


def test_load_package_from_registry_and_folder_agree(store):
    frame = _portfolio()
    from_folder = _probabilities(str(store.package), frame)
    pd.testing.assert_frame_equal(_probabilities("champion", frame), from_folder, check_exact=True)
    pd.testing.assert_frame_equal(_probabilities("2", frame), from_folder, check_exact=True)
    loaded = registry.load_package("champion")
    assert (
        loaded.version == "1" and loaded.package.digest == ModelPackage.load(store.package).digest
    )


def test_registered_model_is_code_text_and_json_only(champion_dir):
    files = [p for p in champion_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix.lower() in PICKLES]
    names = {p.name for p in files}
    assert {"model.txt", "package.json", "package.sha256", "pyfunc_model.py"} <= names
    flavor = yaml.safe_load((champion_dir / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert flavor["model_code_path"].endswith("pyfunc_model.py")
    assert "python_model" not in flavor
    assert flavor["artifacts"]["package"]["path"] == "artifacts/package"


def test_model_carries_its_code_and_pins_what_recoverscore_needs(champion_dir):
    code = champion_dir / "code" / "recoverscore"
    assert (code / "scoring" / "pyfunc_model.py").is_file()
    assert (code / "configs" / "policy.yaml").is_file()  # the package's own settings travel too
    assert not list(code.rglob("__pycache__")) and not list(code.rglob("*.pyc"))
    lines = (champion_dir / "requirements.txt").read_text().splitlines()
    listed = [Requirement(line) for line in lines if "==" in line]
    pinned = {r.name + (f"[{','.join(sorted(r.extras))}]" if r.extras else ""): r for r in listed}
    declared = [Requirement(r) for r in importlib.metadata.requires("recoverscore")]
    runtime = [r for r in declared if r.marker is None or r.marker.evaluate({"extra": ""})]
    assert runtime and "recoverscore" not in pinned  # bundled, not installed
    for requirement in runtime:
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        name = requirement.name + extras
        assert name in pinned, name
        version = str(pinned[name].specifier).removeprefix("==")
        assert version == importlib.metadata.version(requirement.name), name
        assert pinned[name].marker == requirement.marker, name  # uvloop: never on Windows
    assert not [name for name in pinned if name.split("[")[0] in {"pytest", "playwright"}]


def test_a_fresh_process_serves_the_model_from_its_bundled_code(champion_dir, tmp_path):
    """What another serving host does: load the model and score, importing recoverscore from
    the model's own code folder (prepended to the path), whatever is installed."""
    script = (
        "import sys, mlflow.pyfunc, pandas as pd\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "import recoverscore\n"
        "rows = pd.read_json(sys.argv[2], orient='split')\n"
        "out = model.predict(rows, params={'explain': False})\n"
        "print(recoverscore.__file__)\n"
        "print(len(out), out['recommended_tier'].notna().all())\n"
    )
    rows = tmp_path / "rows.json"
    rows.write_text(_as_text(_portfolio(rows=3)).to_json(orient="split", index=False))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    result = subprocess.run(
        [sys.executable, "-c", script, str(champion_dir), str(rows)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    where, scored = result.stdout.split("\n")[-3:-1]
    assert Path(where).is_relative_to(champion_dir / "code" / "recoverscore")
    assert scored == "3 True"


# --- nothing personal leaves the machine ----------------------------------------------------------


def test_input_example_is_synthetic(store, champion_dir):
    text = (champion_dir / "input_example.json").read_text()
    example = json.loads(text.replace("NaN", "null"))
    ids = example["data"]
    column = example["columns"].index("debtor_id")
    assert [row[column] for row in ids] == ["EXAMPLE-1", "EXAMPLE-2"]
    training_ids = store.history["debtor_id"].tolist()
    assert not [i for i in training_ids if i in text]


def test_run_holds_no_debtor_ids(store, tmp_path):
    training_ids = set(store.history["debtor_id"])
    run = mlflow.MlflowClient().get_run(store.first.run_id)
    dataset = run.inputs.dataset_inputs[0].dataset
    recorded = [*run.data.params.values(), *run.data.tags.values(), run.info.run_name]
    recorded += [dataset.name, dataset.digest, dataset.source, dataset.schema, dataset.profile]
    assert not [v for v in recorded if any(i in v for i in training_ids)]
    folder = Path(mlflow.artifacts.download_artifacts(run_id=store.first.run_id, dst_path=tmp_path))
    texts = [p.read_text() for p in folder.rglob("*") if p.suffix in {".csv", ".md", ".json"}]
    assert texts
    assert not [i for i in training_ids for t in texts if i in t]


def test_tables_keyed_by_debtor_are_refused(store):
    rows = store.history[["debtor_id", "principal"]].head(3)
    with pytest.raises(RecoverscoreError, match="debtor_id"):
        registry.log_training(store.package, store.result(0.7, {"scored": rows}), {})


# --- references and errors ------------------------------------------------------------------------


def test_resolve_model_uri():
    assert registry.resolve_model_uri("champion") == "models:/recoverscore@champion"
    assert registry.resolve_model_uri("challenger") == "models:/recoverscore@challenger"
    assert registry.resolve_model_uri("3") == "models:/recoverscore/3"
    assert registry.resolve_model_uri("models:/other/1") == "models:/other/1"
    assert registry.resolve_model_uri("runs:/abc/model") == "runs:/abc/model"
    with pytest.raises(RecoverscoreError, match="unknown model reference"):
        registry.resolve_model_uri("best")


def test_promote_unknown_version(store):
    with pytest.raises(RecoverscoreError, match="model recoverscore has no version 99"):
        registry.promote(99)
    with pytest.raises(RecoverscoreError, match="has no version best"):
        registry.promote("best")


def test_load_unknown_version_or_alias(store):
    with pytest.raises(RecoverscoreError, match="has no version 42"):
        registry.load_package("models:/recoverscore/42")
    with pytest.raises(RecoverscoreError, match="has no alias 'staging'"):
        registry.load_package("models:/recoverscore@staging")


def test_unreachable_server():
    with pytest.raises(RecoverscoreError, match=r"cannot reach the MLflow tracking server at http"):
        registry.connect("http://127.0.0.1:9")


def test_sqlite_folder_missing(store, tmp_path, monkeypatch):
    missing = f"sqlite:///{tmp_path / 'no' / 'such' / 'mlflow.db'}"
    with pytest.raises(RecoverscoreError, match="does not exist"):
        registry.connect(missing)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", missing)
    assert registry.tracking_uri() == missing
    with pytest.raises(RecoverscoreError, match="does not exist"):
        registry.load_package("champion")
    assert not (tmp_path / "no").exists()


def test_default_tracking_uri_is_sqlite_in_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert registry.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
