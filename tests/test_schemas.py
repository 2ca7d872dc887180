"""The column contracts: every check rejects a crafted bad frame; no row is ever lost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recoverscore.data import small_frames, validation
from recoverscore.data.contract import InputContract
from recoverscore.data.schemas import (
    TIERS,
    History,
    Portfolio,
    Scored,
    SyntheticHistory,
    probability_column,
    value_column,
)
from recoverscore.data.validation import validate


def test_generated_world_passes_every_schema(world):
    for model in (Portfolio, History, SyntheticHistory):
        report = validate(world, model)
        assert report.is_valid, report.failures.head()
        assert len(report.valid) == len(world)


def test_valid_rows_come_back_typed(world):
    text = world.head(50).astype(str).replace({"NaT": "", "nan": "", "<NA>": ""})
    report = validate(text, SyntheticHistory)
    assert report.is_valid, report.failures.head()
    expected = world.head(50).set_axis(report.valid.index)
    pd.testing.assert_frame_equal(report.valid[expected.columns], expected, check_dtype=False)
    assert report.valid["due_date"].dtype == "datetime64[ns]"
    assert report.valid["disputes_debt"].dtype == bool


# (column, bad value, check that must fire, schema)
CELL_CASES = [
    ("principal", -5.0, "greater_than(0)", Portfolio),
    ("principal", 0.0, "greater_than(0)", Portfolio),
    ("principal", "lots", "parse as float", Portfolio),
    ("debtor_type", "trust", "isin", Portfolio),
    ("contact_status", "gone", "isin", Portfolio),
    ("n_partial_payments", -1, "greater_than_or_equal_to(0)", Portfolio),
    ("n_broken_promises", 1.5, "parse as int", Portfolio),
    ("n_prior_lawsuits", None, "not_nullable", Portfolio),
    ("due_date", "30/06/2026", "parse as date", Portfolio),
    ("due_date", "-3", "parse as date", Portfolio),  # year -3: found by hypothesis
    ("last_payment_date", "9999-12-31", "parse as date", Portfolio),
    ("disputes_debt", "maybe", "parse as bool", Portfolio),
    ("region", "", "not_nullable", Portfolio),
    ("debtor_id", None, "not_nullable", Portfolio),
    ("given_tier", "prayer", "isin", History),
    ("propensity", 0.0, "greater_than(0)", History),
    ("propensity", 1.5, "less_than_or_equal_to(1)", History),
    ("amount_recovered", -1.0, "greater_than_or_equal_to(0)", History),
    ("p_true_litigation", 1.2, "less_than_or_equal_to(1)", SyntheticHistory),
]


@pytest.mark.parametrize(("column", "value", "check", "model"), CELL_CASES)
def test_each_cell_check_rejects_exactly_the_bad_row(small_world, column, value, check, model):
    frame = small_world.astype({column: object})
    frame.loc[7, column] = value
    report = validate(frame, model)
    assert not report.is_valid
    assert report.rejected_rows.tolist() == [8]  # 1-based data row
    hits = report.failures[report.failures["column"] == column]
    assert hits["check"].str.contains(check, regex=False).any(), report.failures
    assert len(report.valid) == len(frame) - 1


def _row(world: pd.DataFrame, **conditions) -> int:
    mask = np.ones(len(world), dtype=bool)
    for column, wanted in conditions.items():
        mask &= (world[column] == wanted).to_numpy()
    return int(np.flatnonzero(mask)[0])


def _shift(days: int) -> pd.Timedelta:
    return pd.Timedelta(days=days)


def test_cross_column_checks_each_reject_a_crafted_row(world):
    frame = world.head(2_000).copy()
    cases = {}

    i = 0
    frame.loc[i, "due_date"] = frame.loc[i, "as_of"] + _shift(1)
    cases[i] = "due_date on or before as_of"

    i = int(np.flatnonzero(frame["n_partial_payments"].to_numpy() > 0)[0])
    frame.loc[i, "last_payment_date"] = frame.loc[i, "due_date"] - _shift(1)
    cases[i] = "last_payment_date within"

    i = int(np.flatnonzero(frame["n_partial_payments"].to_numpy() > 0)[1])
    frame.loc[i, "n_partial_payments"] = 0
    cases[i] = "present exactly when"

    i = int(np.flatnonzero(frame["last_acknowledgment_date"].notna().to_numpy())[2])
    frame.loc[i, "last_acknowledgment_date"] = frame.loc[i, "as_of"] + _shift(3)
    cases[i] = "last_acknowledgment_date within"

    both = (frame["n_partial_payments"] > 0) & frame["last_acknowledgment_date"].notna()
    i = int(np.flatnonzero(both.to_numpy())[3])
    frame.loc[i, "last_acknowledgment_date"] = frame.loc[i, "last_payment_date"] - _shift(1)
    frame.loc[i, "due_date"] = frame.loc[i, "last_acknowledgment_date"] - _shift(30)
    cases[i] = "a payment interrupts limitation"

    i = _row(frame, n_prior_lawsuits=0)
    frame.loc[i, "n_prior_judgments"] = 1
    cases[i] = "n_prior_judgments at most"

    i = _row(frame, debtor_type="enterprise")
    frame.loc[i, "monthly_income"] = 5_000.0
    cases[i] = "monthly_income only for individuals"

    i = _row(frame, debtor_type="individual")
    frame.loc[i, "annual_revenue"] = 1e6
    cases[i] = "only for enterprises"

    i = int(np.flatnonzero((frame["debtor_type"] == "enterprise").to_numpy())[5])
    frame.loc[i, "is_elderly"] = True
    cases[i] = "is_elderly only for individuals"

    i = _row(frame, recovered=True)
    frame.loc[i, "amount_recovered"] = frame.loc[i, "principal"] * 2
    cases[i] = "at most principal"

    i = _row(frame, recovered=False)
    frame.loc[i, "amount_recovered"] = 10.0
    cases[i] = "exactly when recovered"

    report = validate(frame, SyntheticHistory)
    failures = report.failures
    assert sorted(report.rejected_rows.tolist()) == sorted(i + 1 for i in cases)
    for i, check in cases.items():
        mine = failures[failures["row"] == i + 1]
        assert mine["check"].str.contains(check, regex=False).any(), (check, mine)
    # lazy: every failure is reported in one pass, one line per row and check
    assert len(failures) == len(failures.drop_duplicates(["row", "check"]))
    assert len(report.valid) + len(report.rejected_rows) == len(frame)


def test_duplicate_ids_reject_every_copy(small_world):
    frame = small_world.copy()
    frame.loc[5, "debtor_id"] = frame.loc[9, "debtor_id"]
    report = validate(frame, Portfolio)
    assert report.rejected_rows.tolist() == [6, 10]
    assert set(report.failures["check"]) == {"field_uniqueness"}


def test_missing_column_fails_the_whole_file(small_world):
    report = validate(small_world.drop(columns=["principal", "contact_status"]), Portfolio)
    assert sorted(report.failures["column"]) == ["contact_status", "principal"]
    assert report.failures["row"].isna().all()
    assert len(report.rejected_rows) == len(small_world) and report.valid.empty


def test_accrued_interest_is_optional_and_checked_when_present(small_world):
    assert validate(small_world.drop(columns=["accrued_interest"]), Portfolio).is_valid
    frame = small_world.assign(accrued_interest=np.nan)
    frame.loc[2, "accrued_interest"] = -5.0
    report = validate(frame, Portfolio)
    assert report.rejected_rows.tolist() == [3]
    assert report.failures["column"].tolist() == ["accrued_interest"]


def test_as_of_fills_a_missing_snapshot_date(small_world):
    frame = small_world.drop(columns=["as_of"])
    assert validate(frame, Portfolio, as_of="2026-06-30").is_valid
    early = validate(frame, Portfolio, as_of="2020-01-01")
    assert not early.is_valid
    assert "due_date on or before as_of" in set(early.failures["check"])


def test_row_failures_list_each_rejected_row_once(small_world):
    frame = small_world.astype({"principal": object, "region": object})
    frame.loc[3, "principal"] = "x"
    frame.loc[3, "region"] = " "
    frame.loc[4, "principal"] = -1.0
    failed = validate(frame, Portfolio).row_failures()
    assert failed["row"].tolist() == [4, 5]
    assert "principal: parse as float" in failed.loc[0, "failed_checks"]
    assert "region: not_nullable" in failed.loc[0, "failed_checks"]


def test_scored_schema_has_every_tier_and_rejects_recommending_an_excluded_tier():
    columns = Scored.to_schema().columns
    for tier in TIERS:
        assert probability_column(tier) in columns and value_column(tier) in columns
    row = {
        "debtor_id": ["a", "b"],
        "as_of": pd.Timestamp("2026-06-30"),
        "model_version": "1",
        "recommended_tier": ["litigation", "mediation"],
        "expected_net_value": [10.0, 5.0],
        "excluded_tiers": ["litigation:TIME_BARRED;payment_order:TIME_BARRED", ""],
        "top_reasons": ["", ""],
        "reason_codes": ["", ""],
        "flags": ["", ""],
        "why": ["", ""],
        "contact_plan": [None, None],
        "overrides": [None, None],
        "cell": ["champion", "champion"],
        "assignment_propensity": [1.0, 1.0],
        "champion_tier": ["litigation", "mediation"],
        **{probability_column(t): [0.5, 0.5] for t in TIERS},
        **{value_column(t): [1.0, 1.0] for t in TIERS},
    }
    report = validate(pd.DataFrame(row), Scored)
    assert report.rejected_rows.tolist() == [1]
    assert report.failures.loc[0, "column"] == "recommended_tier"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cells=st.lists(
        st.tuples(
            st.integers(0, 299),
            st.sampled_from(
                [
                    "principal",
                    "n_partial_payments",
                    "due_date",
                    "contact_status",
                    "owns_vehicle",
                    "debtor_type",
                    "n_prior_lawsuits",
                ]
            ),
            st.sampled_from(["", "??", "-3", "1e999", "nan"]),
        ),
        max_size=25,
    )
)
def test_every_row_is_valid_or_rejected_and_only_bad_rows_are_rejected(small_world, cells):
    frame = small_world.astype(str).replace({"NaT": "", "nan": "", "<NA>": ""})
    for i, column, text in cells:
        frame.loc[i, column] = text
    report = validate(frame, SyntheticHistory)
    rejected = set(report.rejected_rows.tolist())
    assert rejected.isdisjoint(set(report.valid.index))
    assert len(rejected) + len(report.valid) == len(frame)
    # every touched row with a value that can never be valid for its column is rejected
    for i, column, _ in cells:
        final = frame.loc[i, column]
        if final in ("", "??", "nan", "1e999"):
            assert i + 1 in rejected, (i, column, final)


# --- small frames: the compiled path reports what pandera reports -----------------------------

# cells a served request or a tiny file may hold: text, numbers, booleans, blanks, edge dates
ODD_CELLS = [
    "", " ", None, np.nan, "??", "nan", "-3", "+4", " 5 ", "1.5", "1e999", -3, 2.5, 0, 1, True,
    False, "true", "No", "2026-02-30", "1800-01-01", "2027-01-01", " 2026-06-01 ", "2026/06/01",
    "individual", "enterprise", "lost", "D000000003", pd.Timestamp("2026-05-01"), "1e19", 2**63,
    "2026-06-27T00:00:00.000", " 2026-06-01 08:30 ", "2026-06-27T25:00", "2026-06-27T8:00",
]  # fmt: skip
OWN_CONTRACT = InputContract.derive(
    ["case_no", "principal", "due_date", "as_of", "debtor_type", "monthly_income", "score", "kind"],
    required=["principal"],
    id_column="case_no",
    extra_numeric=["score"],
    extra_categorical=["kind"],
)


def _own_file(world: pd.DataFrame) -> pd.DataFrame:
    frame = world[["debtor_id", "principal", "due_date", "as_of", "debtor_type", "monthly_income"]]
    rng = np.random.default_rng(0)
    return frame.rename(columns={"debtor_id": "case_no"}).assign(
        score=rng.normal(600, 50, len(frame)).round(), kind=rng.choice(["a", "b"], len(frame))
    )


def _comparable(failures: pd.DataFrame) -> list[tuple]:
    """Failures as plain values: pandera itself shows a whole number as 5 or 5.0 and a missing
    cell as <NA> or nan depending on the frame, so numbers compare as floats, missing as None."""

    def plain(value: object) -> object:
        if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
            return None
        if isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_):
            return float(value)
        return str(value)

    return [tuple(plain(v) for v in row) for row in failures.itertuples(index=False)]


def _json_cell(value: object) -> object:
    """A cell as a JSON request carries it: dates as ISO text, missing as null."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.sampled_from(["portfolio", "history", "own"]),
    rows=st.lists(st.integers(0, 299), min_size=1, max_size=12),
    text=st.booleans(),
    cells=st.lists(
        st.tuples(st.integers(0, 11), st.integers(0, 40), st.sampled_from(ODD_CELLS)), max_size=6
    ),
    request=st.booleans(),
)
def test_small_frames_validate_as_pandera_does(
    small_world, monkeypatch, which, rows, text, cells, request
):
    schema = {
        "portfolio": Portfolio.to_schema(),
        "history": History.to_schema(),
        "own": OWN_CONTRACT.schema,
    }[which]
    base = _own_file(small_world) if which == "own" else small_world
    frame = base.iloc[rows].reset_index(drop=True)
    if text:  # as a CSV reader or a JSON request delivers it
        frame = frame.astype(str).replace({"NaT": "", "nan": "", "<NA>": ""})
    frame = frame.astype(object)
    for i, j, value in cells:
        frame.iat[i % len(frame), j % frame.shape[1]] = value
    if request:  # as MLflow's server builds a JSON request's frame: one inferred type per column
        frame = pd.DataFrame(frame.map(_json_cell).to_numpy().tolist(), columns=frame.columns)
    monkeypatch.setattr(validation, "SMALL_FRAME_ROWS", 10**9)
    small = validate(frame, schema)
    monkeypatch.setattr(validation, "SMALL_FRAME_ROWS", -1)
    reference = validate(frame, schema)
    assert _comparable(small.failures) == _comparable(reference.failures)
    pd.testing.assert_frame_equal(small.valid, reference.valid)


@pytest.mark.parametrize("small", [True, False])
@pytest.mark.parametrize(
    ("cell", "readable"),
    [("1e19", False), (2**63, False), ("-9.3e18", False), (float(2**63 - 1024), True),
     (-(2**63), True)],
)  # fmt: skip
def test_a_count_beyond_int64_is_unreadable_never_wrapped(
    small_world, monkeypatch, small, cell, readable
):
    frame = small_world.head(3).astype(object)
    frame.loc[1, "n_broken_promises"] = cell
    monkeypatch.setattr(validation, "SMALL_FRAME_ROWS", 10**9 if small else -1)
    report = validate(frame, Portfolio)
    found = report.failures.query("column == 'n_broken_promises'")
    if readable:  # it reads as the integer written, and the range checks refuse it
        expected = "less_than_or_equal_to(1000000)" if cell > 0 else "greater_than_or_equal_to(0)"
        assert found[["row", "check"]].values.tolist() == [[2, expected]]
        assert int(found["value"].iloc[0]) == int(cell)
    else:
        assert found[["row", "check"]].values.tolist() == [[2, "parse as int"]]


def test_one_row_goes_the_compiled_way_and_a_large_frame_through_pandera(small_world, monkeypatch):
    calls = []
    compiled_validate = small_frames.CompiledContract.validate
    monkeypatch.setattr(
        small_frames.CompiledContract,
        "validate",
        lambda self, frame, index: (
            calls.append(len(frame)) or compiled_validate(self, frame, index)
        ),
    )
    validate(small_world.head(1), Portfolio)
    validate(small_world.head(validation.SMALL_FRAME_ROWS + 1), Portfolio)
    assert calls == [1]


def test_a_check_the_compiler_does_not_know_sends_every_frame_to_pandera(small_world):
    schema = Portfolio.to_schema().update_column(
        "region", checks=[pa.Check(lambda s: s.str.len() < 3, name="short")]
    )
    assert not small_frames.compiled(schema).supported
    report = validate(small_world.head(2), schema)
    assert set(report.failures["check"]) == {"short"}
