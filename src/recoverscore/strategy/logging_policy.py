"""The logging policy: how the legacy collectors chose a tier, as P(tier | debtor), and where
the history has no support for judging any other choice.

A collection history was not randomised: the aging staircase, and collectors' own exceptions to
it, decided each debt's tier. Learning or judging a new policy from it needs, for every logged
debt, the probability the old policy gave the tier it gave (the propensity), and for every
debt and tier whether the old policy ever did such a thing to debts like it (overlap). Few
files record the propensity, so it is estimated here from the features and the given tier.

**The estimator, and why.** A LightGBM multiclass model of the given tier, cross-fitted: in
each of ``folds`` stratified folds a model trained on the other folds (early-stopped on an inner
fifth) predicts the held-out debts, so no debt's propensity comes from a model that saw it.
Temperature scaling, itself cross-fitted (each fold's temperature comes from the other folds'
predictions), is kept only when it lowers the cross-fitted log loss; otherwise the temperature
is 1. Chosen by cross-fitted log loss (5 folds) on three synthetic worlds: 30% exploration;
10% exploration with two feature-driven deviations (large enterprise debts escalated early,
lost-contact debts skipping mediation); no exploration with the same deviations. "exact" is the
true logging policy's log loss on the same debts; 1,000-row figures are means over 5 worlds;
logistic regression (one-hot categories and aging bucket, standardised numbers) and
scikit-learn's HistGradientBoostingClassifier are shown with their best calibration:

===================  =====  ======  ========  =======  ========  ========  =======
world                rows   exact   LightGBM  + temp.  + isot.   logistic  HistGB
===================  =====  ======  ========  =======  ========  ========  =======
30% exploration      1,000  0.7780  0.8099    0.8091   0.8206    0.8190    0.8215
10% + deviations     1,000  0.3711  0.4129    0.4129   0.4223    0.4523    0.4355
0% + deviations      1,000  0.0248  0.0587    0.0616   0.0686    0.0846    0.0660
30% exploration      200k   0.7822  0.7826    0.7826   0.7825
10% + deviations     200k   0.3676  0.3688    0.3688   0.3683
0% + deviations      200k   0.0285  0.0294    0.0294   0.0292
===================  =====  ======  ========  =======  ========  ========  =======

Boosted trees find the staircase's day thresholds and the deviations' interactions, which the
linear model cannot; trained on the multiclass log loss and early-stopped on it, they come out
calibrated, so temperature scaling moves the log loss by under 0.003 either way (hence: kept
only where it helps), and one-vs-rest isotonic maps overfit at 1,000 rows (+0.01) for at most
0.0005 at 200,000. Small trees (7 leaves, 10 debts a leaf, learning rate 0.1) beat three
other settings at 1,000 rows and come within 0.001 of the exact policy at 200,000, early
stopping after 40-90 rounds there (5 folds of 200,000: about 45 s on one busy core). LightGBM's
text format and a JSON temperature make the final model portable without pickle.

**Clipping.** Probabilities are floored at ``clip`` and not renormalised: renormalising would
move every debt's propensity, the large ones included, while the floor only touches tiers the
model thinks (almost) never happen, whose estimates are the least reliable. Rows may then sum to
slightly more than 1; they are per-tier propensities, not a distribution to sample from.
Off-policy evaluation counts a tier at or below ``offpolicy.Thresholds.min_propensity`` (by
default equal to the clip) as unsupported, so a floored tier is never mistaken for support.

Example (the lead's wiring)::

    from recoverscore.modelling.features import DebtorFeatures
    from recoverscore.strategy import logging_policy as lp

    features = DebtorFeatures().fit(history).transform(history)
    fit = lp.fit_logging_policy(
        features, history["given_tier"], history.get("propensity"), seed=7
    )
    fit.propensity, fit.source, fit.note      # per debt; "recorded" or "estimated"; why
    fit.probabilities                         # debts x tiers, cross-fitted, floored at clip
    overlap = lp.overlap_table(
        lp.default_segments(facts, history), history["given_tier"], fit.probabilities
    )
    print(overlap.message)                    # "litigation was never given to 0-30 day ..."
    figure = lp.overlap_figure(overlap, "en")
    payload = fit.model.to_dict()             # JSON-safe, no pickle
    support = lp.LoggingPolicyModel.from_dict(payload).predict(new_features)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split

from recoverscore.data.facts import AGING_BUCKETS, DebtFacts
from recoverscore.data.schemas import DEBTOR_TYPES, TIERS, tier_codes
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.explain import check_language, load_reasons, tier_names
from recoverscore.modelling.model import float_matrix
from recoverscore.modelling.plotting import use_language

FORMAT = "recoverscore.logging_policy"
FORMAT_VERSION = 1

PARAMS: dict[str, object] = {
    "objective": "multiclass",
    "num_class": len(TIERS),
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_data_in_leaf": 10,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_col_wise": True,
}
"""LightGBM settings (see the table above for why these)."""

MAX_ROUNDS = 500  # early stopping ends far sooner; this bounds a history with no exploration
EARLY_STOPPING_ROUNDS = 50
VALIDATION_FRACTION = 0.2
MIN_ROWS_PER_FOLD = 10

Source = Literal["recorded", "estimated"]


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggingPolicyModel:
    """P(tier | features) under the legacy policy, for debts it has not seen (e.g. at scoring
    time: how often debts like this one were given each tier)."""

    booster: lgb.Booster
    temperature: float
    clip: float
    features: tuple[str, ...]

    def predict(self, features: pd.DataFrame, num_threads: int = 1) -> pd.DataFrame:
        """Debts x tiers, floored at ``clip`` (not renormalised; see the module docstring)."""
        missing = [c for c in self.features if c not in features.columns]
        if missing:
            raise RecoverscoreError(f"the features lack column(s) {missing} the model needs")
        matrix = float_matrix(features, self.booster, columns=list(self.features))
        raw = self.booster.predict(matrix, raw_score=True, num_threads=num_threads)
        probabilities = softmax(np.asarray(raw).reshape(len(features), -1) / self.temperature, 1)
        return pd.DataFrame(
            np.maximum(probabilities, self.clip), index=features.index, columns=list(TIERS)
        )

    def to_dict(self) -> dict:
        """Plain JSON-able data: LightGBM's text model, the temperature, the clip, the inputs."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tiers": list(TIERS),
            "features": list(self.features),
            "temperature": self.temperature,
            "clip": self.clip,
            "booster": self.booster.model_to_string(),
        }

    @classmethod
    def from_dict(cls, payload: dict) -> LoggingPolicyModel:
        """The model back from ``to_dict``; a payload of another kind or tier set is refused."""
        if payload.get("format") != FORMAT or payload.get("format_version") != FORMAT_VERSION:
            raise RecoverscoreError(
                f"not a logging-policy model of format {FORMAT} v{FORMAT_VERSION} "
                f"(got {payload.get('format')!r} v{payload.get('format_version')!r})"
            )
        if payload.get("tiers") != list(TIERS):
            raise RecoverscoreError(
                f"the logging-policy model was fitted for tiers {payload.get('tiers')}, "
                f"not {list(TIERS)}"
            )
        return cls(
            booster=lgb.Booster(model_str=payload["booster"]),
            temperature=float(payload["temperature"]),
            clip=float(payload["clip"]),
            features=tuple(payload["features"]),
        )


@dataclass(frozen=True)
class LoggingPolicyFit:
    """What ``fit_logging_policy`` learnt about the logged debts.

    probabilities: cross-fitted P(tier | x), debts x tiers, floored at the clip.
    propensity: P(the tier given | x) per debt: the recorded one when ``source`` is "recorded",
        else the estimate (floored at the clip).
    note: one sentence on where the propensity came from and why.
    log_loss: cross-fitted log loss of the estimate (before the floor) against the given tier.
    temperature_used: whether temperature scaling lowered that log loss and was kept.
    model: the same estimator fitted on every debt, for debts not in the history.
    """

    probabilities: pd.DataFrame
    propensity: pd.Series
    source: Source
    note: str
    log_loss: float
    temperature_used: bool
    model: LoggingPolicyModel


def _train(
    features: pd.DataFrame, y: np.ndarray, seed: int, num_threads: int, rounds: int | None = None
) -> lgb.Booster:
    """One multiclass booster; with ``rounds`` None, early-stopped on a stratified inner split."""
    params = {**PARAMS, "seed": seed, "num_threads": num_threads}
    if rounds is not None:
        return lgb.train(params, lgb.Dataset(features, y), num_boost_round=rounds)
    present = np.bincount(y, minlength=len(TIERS))
    stratify = y if present[present > 0].min() >= 2 else None
    fit, stop = train_test_split(
        np.arange(len(y)), test_size=VALIDATION_FRACTION, random_state=seed, stratify=stratify
    )
    train_set = lgb.Dataset(features.iloc[fit], y[fit])
    valid_set = lgb.Dataset(features.iloc[stop], y[stop], reference=train_set)
    return lgb.train(
        params,
        train_set,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )


def _temperature(raw: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the log loss of ``softmax(raw / T)``.

    A one-parameter fit by scipy's bounded scalar search on log T, kept as a number so that it
    serialises as JSON (scikit-learn's temperature calibrator lives inside a pickled object).
    """
    rows = np.arange(len(y))

    def loss(log_t: float) -> float:
        return -log_softmax(raw / np.exp(log_t), axis=1)[rows, y].mean()

    return float(np.exp(minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))


def _cross_fitted_temperature(
    raw: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Each fold scaled by the temperature fitted on the other folds' out-of-fold scores."""
    out = np.empty_like(raw)
    for train, test in splits:
        out[test] = softmax(raw[test] / _temperature(raw[train], y[train]), axis=1)
    return out


def _recorded(recorded: object, n: int) -> tuple[np.ndarray | None, str]:
    """The recorded propensity if every value is a probability in (0, 1], and why (not)."""
    if recorded is None:
        return None, "no propensity was recorded: every debt's propensity is estimated"
    values = pd.to_numeric(pd.Series(np.asarray(recorded, dtype=object)), errors="coerce")
    values = values.to_numpy(dtype=float, na_value=np.nan)
    if len(values) != n:
        raise RecoverscoreError(f"recorded propensity has {len(values)} values for {n} debts")
    bad = ~np.isfinite(values) | (values <= 0) | (values > 1)
    if bad.any():
        return None, (
            f"the recorded propensity has {bad.sum():,} of {n:,} values missing or outside "
            "(0, 1]: every debt's propensity is estimated instead"
        )
    return values, "the recorded propensity is complete and valid: it is used as recorded"


def _check_inputs(
    features: pd.DataFrame, given_tier: object, folds: int, clip: float
) -> np.ndarray:
    if not isinstance(features, pd.DataFrame):
        raise RecoverscoreError("features must be a DataFrame (e.g. from DebtorFeatures)")
    tiers = np.asarray(given_tier, dtype=object)
    if tiers.ndim != 1 or len(tiers) != len(features):
        raise RecoverscoreError(
            f"given_tier must be one tier per row of features ({len(features)}), "
            f"got shape {tiers.shape}"
        )
    try:
        y = tier_codes(tiers)
    except ValueError as error:
        raise RecoverscoreError(f"given_tier: {error}") from None
    if folds < 2:
        raise RecoverscoreError(f"folds must be at least 2, got {folds}")
    if len(y) < MIN_ROWS_PER_FOLD * folds:
        raise RecoverscoreError(
            f"too few debts to cross-fit a logging policy: {len(y)}, need at least "
            f"{MIN_ROWS_PER_FOLD * folds} for {folds} folds"
        )
    if not 0 < clip < 1 / len(TIERS):
        raise RecoverscoreError(f"clip must be in (0, {1 / len(TIERS):g}), got {clip}")
    return y


def fit_logging_policy(
    features: pd.DataFrame,
    given_tier: object,
    recorded: object | None = None,
    *,
    folds: int = 5,
    seed: int = 0,
    clip: float = 0.01,
    num_threads: int = 1,
) -> LoggingPolicyFit:
    """Cross-fitted P(tier | x) for every logged debt, its propensity, and a model for new ones.

    features: model features of the logged debts (categoricals as pandas Categorical);
    given_tier: the tier each was given; recorded: the history's ``propensity`` column, if any.
    Deterministic given ``seed`` (and ``num_threads``). One LightGBM thread by default: these
    trees are small, and on a busy machine OpenMP threads waiting on each other turned a
    0.2-second fold into 24 seconds; more threads pay only on a dedicated machine and big data.
    """
    y = _check_inputs(features, given_tier, folds, clip)
    n = len(y)
    rows = np.arange(n)
    with warnings.catch_warnings():  # a tier given fewer times than there are folds is fine
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), y))
    raw = np.empty((n, len(TIERS)))
    rounds = []
    for train, test in splits:
        booster = _train(features.iloc[train], y[train], seed, num_threads)
        raw[test] = booster.predict(features.iloc[test], raw_score=True, num_threads=num_threads)
        rounds.append(booster.best_iteration or booster.current_iteration())
    labels = list(range(len(TIERS)))
    plain = softmax(raw, axis=1)
    scaled = _cross_fitted_temperature(raw, y, splits)
    loss_plain, loss_scaled = log_loss(y, plain, labels=labels), log_loss(y, scaled, labels=labels)
    use_temperature = loss_scaled < loss_plain
    probabilities = np.maximum(scaled if use_temperature else plain, clip)
    final = LoggingPolicyModel(
        booster=_train(features, y, seed, num_threads, rounds=max(1, int(np.median(rounds)))),
        temperature=_temperature(raw, y) if use_temperature else 1.0,
        clip=clip,
        features=tuple(features.columns),
    )
    given, note = _recorded(recorded, n)
    source: Source = "recorded" if given is not None else "estimated"
    if given is None:
        given = probabilities[rows, y]
    return LoggingPolicyFit(
        probabilities=pd.DataFrame(probabilities, index=features.index, columns=list(TIERS)),
        propensity=pd.Series(given, index=features.index, name="propensity"),
        source=source,
        note=note,
        log_loss=float(min(loss_plain, loss_scaled)),
        temperature_used=bool(use_temperature),
        model=final,
    )


# --- overlap -------------------------------------------------------------------------------------


def default_segments(
    facts: DebtFacts, frame: pd.DataFrame, extra: Sequence[str] = ()
) -> pd.DataFrame:
    """Aging bucket x debtor type of each debt (where the staircase and collectors' exceptions
    differ), as far as the data have them, plus the ``extra`` columns of ``frame`` named, e.g.
    ``("contact_status",)``; one segment of all debts when there is nothing to segment by."""
    segments = pd.DataFrame(index=frame.index)
    if facts.aging_bucket is not None:
        segments["aging_bucket"] = pd.Categorical(facts.bucket_labels(), categories=AGING_BUCKETS)
    if "debtor_type" in frame.columns:
        segments["debtor_type"] = pd.Categorical(frame["debtor_type"], categories=DEBTOR_TYPES)
    for column in extra:
        if column not in frame.columns:
            raise RecoverscoreError(f"segment column {column!r} is not in the history")
        segments[column] = frame[column]
    if segments.empty:
        segments["segment"] = "all debts"
    return segments


@dataclass(frozen=True)
class Overlap:
    """Support of every tier in every segment of the history.

    table: one row per segment and tier: the segment's columns, ``tier``, ``debts`` in the
        segment, ``count`` given the tier, its ``share``, ``min_propensity`` (the smallest
        P(tier | x) over the segment's debts) and ``supported`` (count at least ``min_count``).
    unsupported: the rows of ``table`` without support.
    message: one sentence naming them (or saying there are none).
    """

    table: pd.DataFrame
    unsupported: pd.DataFrame
    message: str
    segment_columns: tuple[str, ...]
    min_count: int


def _level_words(language: str) -> dict[str, dict[str, str]]:
    """How segment values read in ``language``: the reason texts' category levels, without the
    English article they carry for sentences ("an enterprise" -> "enterprise")."""
    texts = load_reasons()
    words = {}
    for name, feature in texts.features.items():
        levels = getattr(feature, language).levels
        if language == "en":
            levels = {k: v.removeprefix("an ").removeprefix("a ") for k, v in levels.items()}
        words[name] = levels
    return words


def _segment_labels(frame: pd.DataFrame, columns: Sequence[str], language: str) -> list[str]:
    words = _level_words(language)
    separator = " " if language == "en" else "·"
    labels = []
    for values in frame[list(columns)].itertuples(index=False):
        parts = [
            words.get(c, {}).get(str(v), "missing" if pd.isna(v) else str(v).replace("_", " "))
            for c, v in zip(columns, values, strict=True)
        ]
        labels.append(separator.join(parts))
    return labels


def _message(unsupported: pd.DataFrame, columns: Sequence[str], min_count: int) -> str:
    if unsupported.empty:
        return f"Every tier was given to at least {min_count:,} debts in every segment."
    tiers = tier_names("en")
    segments = _segment_labels(unsupported, columns, "en")
    parts = [
        f"{tiers[tier]} was never given to {segment} debts"
        if count == 0
        else f"{tiers[tier]} was given to only {count:,} of {debts:,} {segment} debts"
        for tier, count, debts, segment in zip(
            unsupported["tier"], unsupported["count"], unsupported["debts"], segments, strict=True
        )
    ]
    shown = 12
    more = f"; and {len(parts) - shown} more" if len(parts) > shown else ""
    return (
        f"No support (fewer than {min_count:,} debts) in {len(parts)} segment and tier "
        f"cell(s): " + "; ".join(parts[:shown]) + more
    )


def overlap_table(
    segments: pd.DataFrame,
    given_tier: object,
    propensities: pd.DataFrame | np.ndarray,
    *,
    min_count: int = 10,
) -> Overlap:
    """Count, share and smallest propensity of every tier in every segment, and where there is
    no support: a tier given to fewer than ``min_count`` of a segment's debts (off-policy
    estimates of a policy using it there rest on extrapolation).

    segments: one row per debt, one column per segment key (``default_segments``);
    propensities: debts x tiers, P(tier | x) under the logging policy (``fit.probabilities``).
    Segments with no debts are left out.
    """
    if not isinstance(segments, pd.DataFrame) or segments.shape[1] == 0:
        raise RecoverscoreError("segments must be a DataFrame with at least one column")
    n = len(segments)
    tiers = np.asarray(given_tier, dtype=object)
    if tiers.shape != (n,):
        raise RecoverscoreError(f"given_tier must be one tier per debt ({n}), got {tiers.shape}")
    try:
        codes = tier_codes(tiers)
    except ValueError as error:
        raise RecoverscoreError(f"given_tier: {error}") from None
    if isinstance(propensities, pd.DataFrame):
        if set(propensities.columns) != set(TIERS):
            raise RecoverscoreError(
                f"propensities need exactly the tier columns {list(TIERS)}, "
                f"got {list(propensities.columns)}"
            )
        propensities = propensities[list(TIERS)]
    p = np.asarray(propensities, dtype=float)
    if p.shape != (n, len(TIERS)):
        raise RecoverscoreError(
            f"propensities must be debts x tiers = ({n}, {len(TIERS)}), got {p.shape}"
        )
    if min_count < 1:
        raise RecoverscoreError(f"min_count must be at least 1, got {min_count}")
    columns = list(segments.columns)
    keys = segments.reset_index(drop=True)
    given = pd.DataFrame((codes[:, None] == np.arange(len(TIERS))).astype(int), columns=list(TIERS))
    grouped = pd.concat([keys, given], axis=1).groupby(columns, observed=True, dropna=False)
    counts = grouped[list(TIERS)].sum()
    smallest = (
        pd.concat([keys, pd.DataFrame(p, columns=list(TIERS))], axis=1)
        .groupby(columns, observed=True, dropna=False)[list(TIERS)]
        .min()
    )
    debts = counts.sum(axis=1)
    table = (
        counts.stack()
        .rename("count")
        .rename_axis([*columns, "tier"])
        .reset_index()
        .merge(debts.rename("debts").reset_index(), on=columns)
        .merge(
            smallest.stack().rename("min_propensity").rename_axis([*columns, "tier"]).reset_index(),
            on=[*columns, "tier"],
        )
    )
    table["share"] = table["count"] / table["debts"]
    table["supported"] = table["count"] >= min_count
    table = table[[*columns, "tier", "debts", "count", "share", "min_propensity", "supported"]]
    unsupported = table[~table["supported"]].reset_index(drop=True)
    return Overlap(
        table=table,
        unsupported=unsupported,
        message=_message(unsupported, columns, min_count),
        segment_columns=tuple(columns),
        min_count=min_count,
    )


_FIGURE_WORDS = {
    "en": {
        "title": "Tiers the legacy policy gave, by segment",
        "share": "share of the segment's debts",
        "note": "numbers: debts given the tier; outlined: fewer than {n} (no support)",
    },
    "zh": {
        "title": "历史催收方式分布（按分组）",  # noqa: RUF001 (Chinese punctuation)
        "share": "占该分组债务的比例",
        "note": "数字：采用该方式的债务笔数；方框：少于{n}笔（无支持）",  # noqa: RUF001
    },
}


def overlap_figure(overlap: Overlap, language: str = "en") -> Figure:
    """Heatmap of each tier's share in each segment, counts written in, unsupported cells
    outlined; labels in ``language`` (a ``Figure``, no pyplot state)."""
    check_language(language)
    words = _FIGURE_WORDS[language]
    columns = list(overlap.segment_columns)
    table = overlap.table
    # segments in order of appearance, a missing key value being a segment of its own
    row = table.groupby(columns, observed=True, dropna=False, sort=False).ngroup().to_numpy()
    segments = table[columns].drop_duplicates()
    column = tier_codes(table["tier"])
    share = np.zeros((len(segments), len(TIERS)))
    count = np.zeros((len(segments), len(TIERS)), dtype=int)
    supported = np.ones((len(segments), len(TIERS)), dtype=bool)
    share[row, column] = table["share"]
    count[row, column] = table["count"]
    supported[row, column] = table["supported"]
    texts = load_reasons()
    labels = [
        getattr(texts.features[c], language).label if c in texts.features else c for c in columns
    ]
    tier_words = tier_names(language)
    fig = Figure(figsize=(7.5, 0.42 * len(segments) + 2.2))
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    cmap = image.get_cmap()
    for (i, j), value in np.ndenumerate(count):
        dark = sum(to_rgb(cmap(share[i, j]))) < 1.5
        ax.text(
            j, i, f"{value:,}", ha="center", va="center", fontsize=8,
            color="white" if dark else "black",
        )  # fmt: skip
        if not supported[i, j]:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="#c0392b", lw=2))
    ax.set_xticks(range(len(TIERS)), [tier_words[t] for t in TIERS])
    ax.set_yticks(range(len(segments)), _segment_labels(segments, columns, language))
    ax.set_xlabel(getattr(texts.words, language).tier_label)
    ax.set_ylabel(" / ".join(labels))
    ax.set_title(words["title"])
    fig.colorbar(image, ax=ax, label=words["share"])
    fig.text(0.01, 0.01, words["note"].format(n=overlap.min_count), fontsize=7)
    use_language(fig, language)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
