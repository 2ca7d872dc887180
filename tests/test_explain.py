"""SHAP reasons and plots: exact contributions, readable texts in two languages, safe plots."""

from __future__ import annotations

import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure
from matplotlib.text import Text

from recoverscore.config import default_config_path
from recoverscore.data.schemas import TIERS
from recoverscore.data.synthetic import generate_frame
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling import explain
from recoverscore.modelling.explain import (
    BASE_VALUE,
    LANGUAGES,
    beeswarm_figure,
    contributions,
    importance_bar_figure,
    load_reasons,
    reasons,
    waterfall_figure,
)
from recoverscore.modelling.features import STANDARD_FEATURES
from recoverscore.modelling.model import TIER_FEATURE, RecoveryModel, load_train_config
from tests.conftest import no_missing_glyphs

AS_OF = "2026-06-30"
CJK = re.compile(r"[\u4e00-\u9fff]")
AGE_CODES = {"DPD", "AGE", "BARRED", "LIMIT"}
pytestmark = pytest.mark.filterwarnings(  # shap's own colormap set-up on import
    "ignore:The set_.* function will be deprecated:PendingDeprecationWarning"
)


def _fit(frame: pd.DataFrame, kind: str = "lightgbm", **features) -> RecoveryModel:
    config = load_train_config()
    feature_config = config.features.model_copy(update=features)
    model = config.model.estimator(feature_config.transformer(), "given_tier")
    model.set_params(kind=kind, num_threads=1)
    return model.fit(frame, frame["recovered"].to_numpy(int))


def _reasons(model: RecoveryModel, frame: pd.DataFrame, tier: object = None, **options):
    """``reasons`` from raw rows: features built here, tier from the frame when not given."""
    tier = frame["given_tier"].to_numpy(dtype=object) if tier is None else tier
    return reasons(model, model.features_.transform(frame), tier, **options)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return generate_frame(4000, seed=1, as_of=AS_OF)


@pytest.fixture(scope="module")
def model(history) -> RecoveryModel:
    return _fit(history)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    """Debtors the model never saw, under a shuffled non-default index."""
    frame = generate_frame(300, seed=5, as_of=AS_OF)
    return frame.set_axis(np.random.default_rng(0).permutation(len(frame)) + 1000)


@pytest.fixture(scope="module")
def texts():
    return load_reasons()


def _code_features(texts) -> dict[str, str]:
    return {entry.code: name for name, entry in texts.features.items()}


def _expected_reasons(shap_row: pd.Series, texts, k: int) -> list[str]:
    """The features a debtor's reasons should name, worked out here from its SHAP values: the
    strongest first, never a care feature, at most one of features that say the same thing."""
    taken, picked = set(), []
    for feature in shap_row.abs().sort_values(ascending=False, kind="stable").index:
        entry = texts.features.get(feature)
        groups = set(entry.groups) if entry is not None else set()
        if len(picked) == k or shap_row[feature] == 0:
            break
        if (entry is not None and not entry.reason) or groups & taken:
            continue
        picked.append(feature)
        taken |= groups
    return picked


# --- contributions --------------------------------------------------------------------------------


@pytest.mark.parametrize("per_row", [False, True])
def test_contributions_add_up_to_the_raw_score(model, rows, per_row):
    tier = np.random.default_rng(1).choice(TIERS, len(rows)) if per_row else "mediation"
    shap_values = contributions(model, rows, tier)
    assert list(shap_values.columns) == [*model.feature_names_, BASE_VALUE]
    assert TIER_FEATURE in shap_values.columns
    assert shap_values.index.equals(rows.index)
    design = model._design(rows, tier)
    raw = model.booster_.predict(design, raw_score=True, num_iteration=model.best_iteration_)
    np.testing.assert_allclose(shap_values.sum(axis=1), raw, rtol=0, atol=1e-9)
    features = model.features_.transform(rows)
    np.testing.assert_allclose(model.raw_score(features, tier), raw, rtol=0, atol=1e-9)
    assert shap_values[BASE_VALUE].nunique() == 1


def test_a_scorecards_reasons_are_its_points_against_their_average(history, rows):
    card = _fit(history, kind="scorecard")
    shap_values = contributions(card, rows, "mediation")
    features = card.features_.transform(rows)
    np.testing.assert_allclose(
        shap_values.sum(axis=1), card.raw_score(features, "mediation"), rtol=0, atol=1e-9
    )
    points = card.scorecard_.points(features, "mediation")
    centred = (
        points - points.mean(axis=0)
        if False
        else points - card.scorecard_.woe_means_ * (card.scorecard_.coef_)
    )
    np.testing.assert_allclose(shap_values.iloc[:, :-1].to_numpy(), centred, atol=1e-12)
    out = _reasons(card, rows, "mediation", k=2)
    top = shap_values.drop(columns=[BASE_VALUE, TIER_FEATURE]).abs().idxmax(axis=1)
    first = out["reason_codes"].str.split(";").str[0].str[:-1]
    by_code = _code_features(load_reasons())
    assert (first.map(by_code) == top).all()


def test_contributions_use_the_tier_column_when_no_tier_is_given(model, rows):
    pd.testing.assert_frame_equal(
        contributions(model, rows), contributions(model, rows, rows["given_tier"].to_numpy())
    )


# --- the reason texts -----------------------------------------------------------------------------


def test_every_standard_feature_has_a_code_and_a_fact_in_both_languages(texts):
    codes = []
    for name in STANDARD_FEATURES:
        entry = texts.features[name]
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", entry.code), name
        codes.append(entry.code)
        for language in LANGUAGES:
            wording = getattr(entry, language)
            assert CJK.search(wording.label) or language != "zh"
            if not entry.reason:
                continue
            sentence = wording.fact.format(value="7", s="s", feature=wording.label)
            assert "{" not in sentence and "}" not in sentence
            assert CJK.search(wording.fact) or language != "zh"
    assert len(codes) == len(set(codes)), "reason codes must be unique"
    assert TIER_FEATURE not in texts.features
    care = {name for name, entry in texts.features.items() if not entry.reason}
    assert care == {"region", "is_elderly", "disaster_affected"}


def _write(tmp_path, data) -> str:
    path = tmp_path / "reasons.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.fixture()
def raw_texts() -> dict:
    return yaml.safe_load(default_config_path("reasons.yaml").read_text(encoding="utf-8"))


def test_yaml_errors_name_the_key(tmp_path, raw_texts):
    del raw_texts["features"]["days_past_due"]["zh"]
    with pytest.raises(RecoverscoreError, match=r"features\.days_past_due\.zh: Field required"):
        load_reasons(_write(tmp_path, raw_texts))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["features"]["n_assets"]["en"].update(fact="{amount} x"),
            "n_assets.en.fact",
        ),
        (lambda d: d["features"]["n_assets"]["zh"].pop("fact"), r"n_assets: .*fact.*'zh'"),
        (lambda d: d["words"]["zh"].update(raises="{value}"), r"words\.zh\.raises"),
        (lambda d: d["words"]["en"]["tier_levels"].pop("mediation"), "mediation"),
        (lambda d: d["codes"]["NO_ASSETS"].pop("zh"), r"codes\.NO_ASSETS\.zh"),
        (lambda d: d["features"]["n_assets"].update(colour="red"), r"n_assets\.colour"),
        (lambda d: d["features"]["owns_vehicle"].update(code="REALTY"), "REALTY"),
        (lambda d: d["features"].pop("pays_tax"), "pays_tax"),
        (lambda d: d["features"]["region"].update(format="colour"), r"region\.format"),
        (lambda d: d["words"]["zh"].pop("missing"), r"words\.zh\.missing"),
        (lambda d: d["features"]["contact_status"]["en"]["levels"].update(gone="x"), "gone"),
    ],
)
def test_bad_reason_texts_fail_at_load_time(tmp_path, raw_texts, change, message):
    change(raw_texts)
    with pytest.raises(RecoverscoreError, match=message):
        load_reasons(_write(tmp_path, raw_texts))


# --- reasons --------------------------------------------------------------------------------------


def test_reasons_are_the_top_k_by_absolute_contribution_with_signed_codes(model, rows, texts):
    k = 3
    out = _reasons(model, rows, "litigation", k=k)
    assert list(out.columns) == ["reason_codes", "top_reasons", "reason_1", "reason_2", "reason_3"]
    assert out.index.equals(rows.index)
    shap_values = contributions(model, rows, "litigation").drop(columns=[BASE_VALUE, TIER_FEATURE])
    by_code = _code_features(texts)
    for index, row in out.iterrows():
        codes = row["reason_codes"].split(";")
        assert len(codes) == k
        assert row["top_reasons"].split(" | ") == [row[f"reason_{j + 1}"] for j in range(k)]
        values = shap_values.loc[index]
        features = [by_code[code[:-1]] for code in codes]
        assert features == _expected_reasons(values, texts, k)
        for code, feature, text in zip(codes, features, row.iloc[2:], strict=True):
            sign = "+" if values[feature] > 0 else "-"
            assert code[-1] == sign
            assert text.endswith("recovery more likely" if sign == "+" else "recovery less likely")
    assert not out["reason_codes"].str.contains("TIER|tier").any()


def test_the_tier_is_never_a_reason_even_when_it_matters_most(model, rows, texts):
    shap_values = contributions(model, rows, "soft_reminder")
    names = [c for c in shap_values.columns if c not in (BASE_VALUE, TIER_FEATURE)]
    out = _reasons(model, rows, "soft_reminder", k=len(names) + 3)
    assert not out["top_reasons"].str.contains("tier").any()
    eligible = shap_values[names].apply(lambda r: len(_expected_reasons(r, texts, 99)), axis=1)
    counts = out["reason_codes"].str.count(";") + 1
    pd.testing.assert_series_equal(counts, eligible, check_names=False, check_dtype=False)
    last = out[f"reason_{len(names) + 1}"]
    assert last.isna().all()  # more reasons asked for than there are inputs


def _old_barred_debt(history: pd.DataFrame) -> pd.DataFrame:
    debt = history.head(1).copy()
    debt["due_date"] = pd.Timestamp("2015-03-01")
    debt["last_acknowledgment_date"] = pd.NaT
    debt["last_payment_date"] = pd.NaT
    debt["n_partial_payments"] = 0
    return debt


def test_an_old_time_barred_debt_gives_an_age_reason_that_lowers(model, history):
    debt = _old_barred_debt(history)
    out = _reasons(model, debt, "litigation", k=3).iloc[0]
    age = [c for c in out["reason_codes"].split(";") if c[:-1] in AGE_CODES]
    assert age and all(c.endswith("-") for c in age), out["reason_codes"]
    assert re.search(
        r"(days past due|limitation|time-barred)[^|]*: recovery less likely", out["top_reasons"]
    )


def test_values_read_naturally(model, history, texts):
    """Every non-zero input of one crafted debtor: integers, ratios, flags, buckets, missing."""
    debt = _old_barred_debt(history)
    debt["principal"] = 10_000.0
    debt["monthly_income"] = 10_000.0 * 2.3 / 12
    debt["owns_real_estate"] = False
    debt["contact_status"] = "lost"
    values = contributions(model, debt, "mediation").iloc[0]
    en = _reasons(model, debt, "mediation", k=40).iloc[0]
    zh = _reasons(model, debt, "mediation", k=40, language="zh").iloc[0]
    by_feature = {
        _code_features(texts)[code[:-1]]: (en[f"reason_{j + 1}"], zh[f"reason_{j + 1}"])
        for j, code in enumerate(en["reason_codes"].split(";"))
    }
    days = (pd.Timestamp(AS_OF) - pd.Timestamp("2015-03-01")).days
    expected = {
        "days_past_due": (f"{days:,} days past due", f"逾期{days}天"),
        "log_income_to_principal": ("Annual income 2.3x the debt", "年收入为欠款的2.3倍"),
        "owns_real_estate": ("No real estate on record", "名下无房产"),
        "days_since_last_payment": ("No payment received yet", "尚无还款"),
        "aging_bucket": ("time-barred aging bucket", "账龄已过诉讼时效"),
        "days_left_in_limitation": ("limitation period ended", "诉讼时效已于"),
        "contact_status": ("unreachable (contact lost)", "已失联"),
        "log_principal": ("A principal of CNY 10,000", "欠款本金1万元"),
    }
    assert set(by_feature) == set(
        _expected_reasons(values.drop([BASE_VALUE, TIER_FEATURE]), texts, 40)
    )
    checked = 0
    for feature, (english, chinese) in expected.items():
        if feature not in by_feature:  # no effect, or a stronger feature says the same
            continue
        assert english in by_feature[feature][0]
        assert chinese in by_feature[feature][1]
        checked += 1
    assert checked >= 4
    for english, chinese in by_feature.values():
        assert not re.search(r"\bnan\b|None|\{", english + chinese)


def test_chinese_reasons(model, rows):
    out = _reasons(model, rows, "mediation", language="zh")
    assert out["top_reasons"].map(lambda t: bool(CJK.search(t))).all()
    sentences = pd.concat([out[f"reason_{j}"] for j in (1, 2, 3)]).dropna()
    assert sentences.str.fullmatch(r"[^，]+，回款可能性(上升|下降)").all()
    assert not sentences.str.contains(r"回收|提高|降低|[A-Za-z]|\d,\d").any()
    english = _reasons(model, rows, "mediation")
    pd.testing.assert_series_equal(out["reason_codes"], english["reason_codes"])


@pytest.mark.parametrize("language", ["fr", "EN", ""])
def test_unknown_language_is_an_error_naming_the_choices(model, rows, language):
    with pytest.raises(RecoverscoreError, match=r"unknown language.*'en', 'zh'"):
        _reasons(model, rows, language=language)
    with pytest.raises(RecoverscoreError, match="unknown language"):
        waterfall_figure(model, rows.head(1), language=language)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_is_an_error(model, rows, k):
    with pytest.raises(RecoverscoreError, match="k must be"):
        _reasons(model, rows, k=k)


def test_an_extra_user_column_uses_the_default_template(history, texts):
    rng = np.random.default_rng(3)
    own = history.assign(
        bureau_score=600
        + 120 * history["recovered"].to_numpy(int)
        + rng.normal(0, 40, len(history))
    )
    model = _fit(own, extra_numeric=["bureau_score"])
    assert "bureau_score" in model.input_names
    assert "bureau_score" not in texts.features
    out = _reasons(model, own.head(200), k=3)
    mine = out["reason_codes"].str.contains(r"\bBUREAU_SCORE[+-]")
    assert mine.mean() > 0.5  # the column carries the outcome, so it is a top reason
    sentences = out["top_reasons"][mine]
    assert sentences.str.contains(r"bureau_score = [\d,.]+: recovery (?:more|less) likely").all()
    zh = _reasons(model, own.head(20), k=3, language="zh")["top_reasons"]
    assert zh.str.contains(r"bureau_score为[\d.]+\uff0c回款可能性(?:上升|下降)").any()


def test_reasons_reuse_given_contributions(model, rows):
    shap_values = contributions(model, rows, "payment_order")
    given = _reasons(model, rows, "payment_order", shap_values=shap_values)
    pd.testing.assert_frame_equal(given, _reasons(model, rows, "payment_order"))
    with pytest.raises(RecoverscoreError, match="these very rows"):
        _reasons(model, rows.head(10), "payment_order", shap_values=shap_values)


def test_empty_frame(model, rows):
    empty = rows.iloc[0:0]
    assert contributions(model, empty, "mediation").shape == (0, len(model.input_names) + 1)
    assert len(_reasons(model, empty, "mediation")) == 0


def test_text_is_built_per_feature_not_per_row(model, history, monkeypatch):
    """No per-row Python: templates are filled once per feature and wording, whatever the rows."""
    calls = []
    real = explain._fill
    monkeypatch.setattr(explain, "_fill", lambda *a: calls.append(1) or real(*a))
    frame = pd.concat([history] * 2, ignore_index=True)
    out = _reasons(model, frame, k=3)
    assert out["reason_3"].notna().all()
    assert len(calls) <= 6 * len(model.input_names)  # two directions x three wordings


# --- plots ----------------------------------------------------------------------------------------


def _texts_of(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text)]


def _saves_png(fig: Figure, path) -> None:
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_global_plots_are_figures_that_save(model, history, tmp_path):
    before = (plt.get_fignums(), plt.isinteractive())
    bees = beeswarm_figure(model, history, "mediation", max_rows=500)
    per_row = history["given_tier"].to_numpy()  # sampled along with the rows
    bars = importance_bar_figure(model, history, per_row, max_rows=500)
    for name, fig in (("bees", bees), ("bars", bars)):
        assert isinstance(fig, Figure)
        _saves_png(fig, tmp_path / f"{name}.png")
        labels = _texts_of(fig)
        assert "days past due" in labels
        assert not any(re.search(r"D\d{9}", t) for t in labels)
    assert (plt.get_fignums(), plt.isinteractive()) == before


def test_waterfall_of_one_debtor_shows_no_id(model, history, tmp_path):
    before = (plt.get_fignums(), plt.isinteractive())
    row = history.set_index("debtor_id", drop=False).iloc[7]
    fig = waterfall_figure(model, row, "payment_order")
    assert isinstance(fig, Figure)
    _saves_png(fig, tmp_path / "waterfall.png")
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels() + ax.get_xticklabels()]
    assert any("days past due" in t for t in labels)
    every_text = " ".join(_texts_of(fig))
    assert row["debtor_id"] not in every_text
    assert not re.search(r"D\d{9}", every_text)
    assert (plt.get_fignums(), plt.isinteractive()) == before
    frame_fig = waterfall_figure(model, history.iloc[[7]], "payment_order")
    _saves_png(frame_fig, tmp_path / "same.png")
    ticks = [[t.get_text() for t in f.axes[0].get_yticklabels()] for f in (fig, frame_fig)]
    assert ticks[0] == ticks[1]


def test_waterfall_wants_one_row(model, history):
    with pytest.raises(RecoverscoreError, match="one debtor"):
        waterfall_figure(model, history.head(2))


# --- care, not blame; one reason per thing said; the trade's Chinese ------------------------------

CARE = re.compile(
    r"shanghai|zhejiang|guangdong|jiangsu|sichuan|henan|region|elderly|older|senior|disaster"
    r"|上海|浙江|广东|江苏|四川|河南|地区|位于|老年|年龄|高龄|受灾|灾害|灾",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def every_reason(model, rows) -> pd.DataFrame:
    """All reasons (k = every input) of every debtor under every tier, in both languages."""
    k = len(model.input_names)
    frames = [
        _reasons(model, rows, tier, k=k, language=language).assign(tier=tier, language=language)
        for tier in TIERS
        for language in LANGUAGES
    ]
    return pd.concat(frames)


def test_region_age_and_disaster_are_never_a_reason(model, rows, every_reason):
    care = ["region", "is_elderly", "disaster_affected"]
    shap_values = contributions(model, rows, "mediation")
    assert (shap_values["region"] != 0).any()  # in the model, so the test can fail
    # even as by far the strongest inputs they are no reason
    loud = shap_values.assign(**{c: 100.0 * (-1) ** i for i, c in enumerate(care)})
    for language in LANGUAGES:
        out = _reasons(model, rows, "mediation", k=5, language=language, shap_values=loud)
        assert not out["top_reasons"].str.contains(CARE).any()
        assert out["reason_codes"].str.count(";").eq(4).all()
    sentences = pd.concat([every_reason[c] for c in every_reason if c.startswith("reason_")])
    sentences = sentences.dropna()
    assert len(sentences) > 10_000
    assert not sentences.str.contains(CARE).any(), sentences[sentences.str.contains(CARE)].head()
    assert not every_reason["reason_codes"].str.contains(r"REGION|ELDERLY|DISASTER").any()


def test_features_that_say_the_same_thing_give_one_reason(every_reason, texts):
    by_code = _code_features(texts)
    for codes in every_reason["reason_codes"]:
        groups = [g for c in codes.split(";") for g in texts.features[by_code[c[:-1]]].groups]
        assert len(groups) == len(set(groups)), codes
    zh = every_reason[every_reason["language"] == "zh"]["top_reasons"]
    assert not (zh.str.contains("账龄已过诉讼时效") & zh.str.contains("诉讼时效已于")).any()
    assert not (zh.str.contains("尚无还款") & zh.str.contains("尚无部分还款")).any()


def _sentence(texts, feature: str, value: object, language: str, positive: bool) -> str:
    """One feature's reason for one value, as ``reasons`` writes it."""
    column = pd.Series([value])
    if isinstance(value, str):
        column = column.astype("category")
    entry = explain._entry(texts, feature, isinstance(value, str), language)
    words = getattr(texts.words, language)
    shown = explain._show(column, entry, words)
    return explain._sentences(entry, shown, np.array([positive]), words)[0]


@pytest.mark.parametrize(
    ("feature", "value", "language", "positive", "expected"),
    [
        ("days_past_due", 1369.0, "zh", False, "逾期1369天，回款可能性下降"),
        ("days_past_due", 1369.0, "en", False, "1,369 days past due: recovery less likely"),
        ("days_left_in_limitation", -206.0, "zh", False, "诉讼时效已于206天前届满，回款可能性下降"),
        (
            "days_left_in_limitation",
            748.0,
            "en",
            False,
            "748 days left before the limitation period ends: recovery less likely",
        ),
        ("log_principal", np.log(8_500.0), "zh", True, "欠款本金8500元，回款可能性上升"),
        ("log_principal", np.log(10_000.0), "zh", True, "欠款本金1万元，回款可能性上升"),
        ("log_principal", np.log(123_456.0), "zh", False, "欠款本金12.35万元，回款可能性下降"),
        (
            "log_principal",
            np.log(123_456.0),
            "en",
            False,
            "A principal of CNY 123,456: recovery less likely",
        ),
        ("n_prior_lawsuits", 3.0, "zh", False, "被诉3次，回款可能性下降"),
        ("n_prior_lawsuits", 1.0, "en", False, "Sued 1 time before: recovery less likely"),
        ("n_broken_promises", 2.0, "zh", False, "承诺还款未兑现2次，回款可能性下降"),
        ("pays_tax", 0.0, "zh", False, "未查到纳税记录，回款可能性下降"),
        ("pays_tax", 0.0, "en", False, "No tax filings found: recovery less likely"),
        ("contact_status", "lost", "zh", False, "债务人已失联，回款可能性下降"),
        ("industry", "wholesale_retail", "zh", True, "所属行业：批发和零售业，回款可能性上升"),
        (
            "industry",
            "technology",
            "zh",
            True,
            "所属行业：信息传输、软件和信息技术服务业，回款可能性上升",
        ),
        ("n_partial_payments", 0.0, "zh", True, "尚无部分还款，回款可能性上升"),
    ],
)
def test_the_trades_words(texts, feature, value, language, positive, expected):
    assert _sentence(texts, feature, value, language, positive) == expected


@pytest.mark.parametrize(
    ("amount", "en", "zh"),
    [
        (0.4, "CNY 0", "0元"),
        (-0.4, "CNY 0", "0元"),
        (9_999.4, "CNY 9,999", "9999元"),
        (9_999.6, "CNY 10,000", "1万元"),
        (-12_345.0, "CNY -12,345", "-1.23万元"),
        (1_005_000.0, "CNY 1,005,000", "100.5万元"),
        (1.23e11, "CNY 123,000,000,000", "12300000万元"),
    ],
)
def test_amounts_read_as_the_language_writes_them(texts, amount, en, zh):
    for language, expected in (("en", en), ("zh", zh)):
        words = getattr(texts.words, language)
        assert explain.format_amounts(np.array([amount]), words).to_pylist() == [expected]


def test_waterfall_reads_as_a_probability(model, history):
    row = history.iloc[[3]]
    fig = waterfall_figure(model, row, "litigation")
    p = model.recovery_probability(row, "litigation")[0]
    exp = explain.explanation(model, row, "litigation")[0]
    raw = float(exp.base_values + exp.values.sum())
    p_base = model.probability_of_log_odds(np.array([float(exp.base_values)]))[0]
    title = fig.axes[2].get_title()
    assert title == f"P(recover) {p:.0%} under litigation: what moved this debtor from the average"
    marks = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes[1:3]]
    assert marks[0] == [
        "\naverage debtor",
        f"\n= {float(exp.base_values):.2f} log-odds, P {p_base:.0%}",
    ]
    assert marks[1] == ["this debtor", f"= {raw:.2f} log-odds, P {p:.0%}"]
    assert "log-odds" in fig.axes[0].get_xlabel() and "calibrated" in fig.axes[0].get_xlabel()
    assert not [t for t in _texts_of(fig) if "f(x)" in t or "E[f(X)]" in t]


def test_probability_of_log_odds_is_the_calibrated_probability(model, history):
    features = model.features_.transform(history)
    raw = model.raw_score(features, "mediation")
    np.testing.assert_allclose(
        model.probability_of_log_odds(raw), model.recovery_probability(history, "mediation")
    )
    card = _fit(history, kind="scorecard")
    raw = card.raw_score(card.features_.transform(history), "mediation")
    np.testing.assert_allclose(
        card.probability_of_log_odds(raw), card.recovery_probability(history, "mediation")
    )


@pytest.mark.parametrize("kind", ["waterfall", "beeswarm", "bar"])
def test_chinese_plots_render_every_glyph_wherever_drawn(model, history, tmp_path, kind):
    """Built, then drawn outside any font setting (as a notebook displays it, or savefig)."""
    with no_missing_glyphs():
        if kind == "waterfall":
            fig = waterfall_figure(model, history.iloc[[3]], "litigation", language="zh")
        elif kind == "beeswarm":
            fig = beeswarm_figure(model, history, "mediation", max_rows=300, language="zh")
        else:
            fig = importance_bar_figure(model, history, "mediation", max_rows=300, language="zh")
        _saves_png(fig, tmp_path / "zh.png")
        fig.canvas.print_figure(io.BytesIO(), format="png")
    texts = _texts_of(fig)
    assert sum(bool(CJK.search(t)) for t in texts) >= 5
    assert not [t for t in texts if "other features" in t or t in ("High", "Low")]
    if kind == "waterfall":
        assert fig.axes[2].get_title().startswith("诉讼方式下回款概率")
        assert fig.axes[1].get_xticklabels()[0].get_text() == "\n平均水平"


def test_tier_names_in_both_languages(texts):
    assert explain.tier_names("en") == {
        "soft_reminder": "soft reminder",
        "mediation": "mediation",
        "payment_order": "payment order",
        "litigation": "litigation",
    }
    chinese = explain.tier_names("zh", texts)
    assert list(chinese) == list(TIERS) and all(CJK.search(name) for name in chinese.values())
    with pytest.raises(RecoverscoreError, match="unknown language"):
        explain.tier_names("fr")


def test_the_kernel_gives_lightgbms_reasons(model, history):
    """The fast TreeSHAP kernel and LightGBM's pred_contrib give the same reasons, row for row."""
    frame = pd.concat([history] * 3, ignore_index=True)
    tiers = np.random.default_rng(4).choice(TIERS, len(frame))
    fast = _reasons(model, frame, tiers, k=3)
    assert model.explainer == "recoverscore TreeSHAP kernel"
    features = model.features_.transform(frame)
    names, kernel_values = model.contributions(features, tiers)
    design = model._as_matrix(model._design(frame, tiers))
    lightgbm = model.booster_.predict(
        design, pred_contrib=True, num_iteration=model.best_iteration_
    )
    np.testing.assert_allclose(kernel_values, lightgbm, rtol=0, atol=1e-9)
    given = pd.DataFrame(lightgbm, index=frame.index, columns=[*names, BASE_VALUE])
    slow = reasons(model, features, tiers, k=3, shap_values=given)
    pd.testing.assert_frame_equal(fast, slow)
