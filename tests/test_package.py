"""The model package: self-contained, one hash over every byte, refused when changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverscore import config as config_module
from recoverscore import score
from recoverscore.data.schemas import Portfolio
from recoverscore.data.synthetic import generate_frame
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.explain import _default_reasons
from recoverscore.modelling.features import STANDARD_FEATURES
from recoverscore.modelling.model import TrainConfig, load_train_config
from recoverscore.scoring.package import (
    HASH_FILE,
    MODEL_FILE,
    PACKAGE_FILE,
    ModelPackage,
    check_model_text,
)

AS_OF = "2026-06-30"


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return generate_frame(2_500, seed=8, as_of=AS_OF)


@pytest.fixture(scope="module")
def package(history) -> ModelPackage:
    model = load_train_config().estimator().set_params(kind="lightgbm", num_threads=1)
    return ModelPackage.build(model.fit(history, history["recovered"].to_numpy(int)))


@pytest.fixture(scope="module")
def saved(package, tmp_path_factory) -> Path:
    return package.save(tmp_path_factory.mktemp("pkg") / "package")


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    return generate_frame(200, seed=9, as_of=AS_OF)[list(Portfolio.to_schema().columns)]


def test_round_trip_keeps_the_hash_and_every_answer(package, saved, portfolio):
    assert {p.name for p in saved.iterdir()} == {HASH_FILE, MODEL_FILE, PACKAGE_FILE}
    loaded = ModelPackage.load(saved)
    assert loaded.digest == package.digest and loaded.label == package.label
    assert (saved / HASH_FILE).read_text() == package.digest + "\n"
    pd.testing.assert_frame_equal(score(portfolio, loaded), score(portfolio, package))
    document = json.loads((saved / PACKAGE_FILE).read_text())
    assert {"contract", "policy", "costs", "texts", "model"} <= set(document)


def _copy(saved: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(saved, target)
    return target


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from([MODEL_FILE, PACKAGE_FILE, HASH_FILE]),
    where=st.floats(0, 1, exclude_max=True),
    delta=st.integers(1, 255),
)
def test_changing_any_byte_is_refused_in_one_line(saved, tmp_path, name, where, delta):
    folder = _copy(saved, tmp_path)
    data = bytearray((folder / name).read_bytes())
    position = int(where * len(data))
    data[position] = (data[position] + delta) % 256
    (folder / name).write_bytes(bytes(data))
    with pytest.raises(RecoverscoreError, match="changed after it was saved") as caught:
        ModelPackage.load(folder)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(saved, tmp_path):
    for name in (MODEL_FILE, PACKAGE_FILE, HASH_FILE):
        folder = _copy(saved, tmp_path)
        (folder / name).unlink()
        with pytest.raises(RecoverscoreError, match=f"{name} is missing|changed after"):
            ModelPackage.load(folder)


def test_a_broken_model_text_with_a_recomputed_hash_is_an_error_not_an_abort(saved, tmp_path):
    """Editing model.txt and re-signing it reaches LightGBM's parser, which can abort the
    process on inconsistent trees: the structure is checked first."""
    text = (saved / MODEL_FILE).read_text()
    damaged = {
        "a leaf value dropped": text.replace("leaf_value=", "leaf_value=0 ", 1),
        "tree sizes wrong": text.replace("tree_sizes=", "tree_sizes=7", 1),
        "a child out of the tree": text.replace("left_child=", "left_child=99 ", 1),
        "truncated": text[: len(text) // 2],
    }
    for what, bad in damaged.items():
        with pytest.raises(RecoverscoreError, match="not a valid LightGBM model"):
            check_model_text(bad)
        folder = _copy(saved, tmp_path)
        (folder / MODEL_FILE).write_text(bad)
        from recoverscore.scoring.package import _digest

        document = (folder / PACKAGE_FILE).read_bytes()
        (folder / HASH_FILE).write_text(_digest(bad, document) + "\n")
        with pytest.raises(RecoverscoreError, match="not a valid LightGBM model"):
            ModelPackage.load(folder)
        assert what


def test_an_older_package_format_says_retrain(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    document = json.loads((folder / PACKAGE_FILE).read_text())
    document["format_version"] = 1
    text = json.dumps(document).encode()
    (folder / PACKAGE_FILE).write_bytes(text)
    from recoverscore.scoring.package import _digest

    (folder / HASH_FILE).write_text(_digest((folder / MODEL_FILE).read_text(), text) + "\n")
    with pytest.raises(RecoverscoreError, match="retrain"):
        ModelPackage.load(folder)


def test_installed_yaml_files_do_not_change_a_saved_package(
    saved, portfolio, tmp_path, monkeypatch
):
    before = score(portfolio, ModelPackage.load(saved))
    configs = tmp_path / "configs"
    shutil.copytree(config_module.CONFIG_DIR, configs)
    policy = yaml.safe_load((configs / "policy.yaml").read_text())
    policy["recovery_share"] = {t: 0.2 for t in policy["recovery_share"]}
    (configs / "policy.yaml").write_text(yaml.safe_dump(policy))
    costs = yaml.safe_load((configs / "costs.yaml").read_text())
    costs["handling_cost"] = {t: 9_999 for t in costs["handling_cost"]}
    (configs / "costs.yaml").write_text(yaml.safe_dump(costs, allow_unicode=True))
    monkeypatch.setattr(config_module, "CONFIG_DIR", configs)
    _default_reasons.cache_clear()
    try:
        after = score(portfolio, ModelPackage.load(saved))
        pd.testing.assert_frame_equal(after, before)
        fresh = ModelPackage.build(ModelPackage.load(saved).model)  # reads the changed files
        changed = score(portfolio, fresh)
        assert (changed["expected_net_value"] != before["expected_net_value"]).all()
    finally:
        _default_reasons.cache_clear()


def test_overridden_settings_are_not_saved_as_a_package(package, tmp_path):
    costs = package.costs.model_copy(update={"duration_days": {**package.costs.duration_days}})
    assert package.with_settings(costs=costs).overrides == {}  # equal settings: no override
    dearer = package.costs.model_copy(
        update={"handling_cost": {t: 1.0 + v for t, v in package.costs.handling_cost.items()}}
    )
    with pytest.raises(RecoverscoreError, match="not saved"):
        package.with_settings(costs=dearer).save(tmp_path / "x")


def test_a_scorecard_package_has_no_model_text(history, portfolio, tmp_path):
    model = load_train_config().estimator().set_params(kind="scorecard")
    package = ModelPackage.build(model.fit(history, history["recovered"].to_numpy(int)))
    folder = package.save(tmp_path / "card")
    assert not (folder / MODEL_FILE).exists()
    loaded = ModelPackage.load(folder)
    assert loaded.model.kind_ == "scorecard" and loaded.digest == package.digest
    pd.testing.assert_frame_equal(score(portfolio, loaded), score(portfolio, package))


def test_an_own_data_package_names_the_guardrails_it_cannot_check(history):
    own = history[["debtor_id", "principal", "contact_status", "recovered"]].rename(
        columns={"debtor_id": "case"}
    )
    config = TrainConfig.model_validate(
        {
            "data": {"id_column": "case", "tier_column": None},
            "features": {
                "disabled": [
                    n for n in STANDARD_FEATURES if n not in ("log_principal", "contact_status")
                ]
            },
        }
    )
    model = config.estimator().set_params(kind="lightgbm", num_threads=1)
    package = ModelPackage.build(model.fit(own, own["recovered"].to_numpy(int)), id_column="case")
    assert package.contract.id_column == "case"
    assert package.contract.standard == ["principal", "contact_status"]
    assert package.unchecked_rules() == [
        "TIME_BARRED",
        "DISPUTED",
        "EVIDENCE_INCOMPLETE",
        "NO_ASSETS",
        "DISASTER_GRACE",
        "DIALECT_STAFF",
        "SUPPORTIVE_CONTACT",
    ]
    scored = score(own.head(20), package)
    assert scored.columns[0] == "case"
    unchecked = "not checked, no data: the limitation period has expired, the debtor disputes"
    assert scored["why"].str.contains(unchecked).all()
