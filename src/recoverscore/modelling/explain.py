"""Why a debtor got their recommendation: SHAP reasons and plots.

What gets explained is the model's P(recover) under the recommended tier, because that is the
number the expected-value policy acts on. The values come from ``RecoveryModel.contributions``
on the features the scoring pipeline already built: for LightGBM, exact TreeSHAP values of the
raw log-odds that add up, with the base value, to that output to machine precision; for a
scorecard, each feature's points against their training average, which are the Shapley values
of an additive model. The plots take the same values, wrapped in a ``shap.Explanation``.
Calibration is monotone: an input that raises the log-odds raises the calibrated probability as
well.

Exact TreeSHAP is fast for what it computes, yet far dearer than a plain prediction (its work
per row grows with trees x leaves x depth squared); it sets the speed of ``reasons``. The text
around it is vectorised, looping over features and reason ranks, never over rows.

A reason is one input's contribution turned into a sentence from ``configs/reasons.yaml``, in
English or Chinese: the fact its value states ("1,369 days past due", "逾期1369天"; log ratios as
"2.3x", flags as "owns real estate" / "no real estate on record", the aging bucket by its label,
amounts of 10,000 and more in 万元 in Chinese, missing values in words) and the direction of its
contribution ("recovery less likely", "回款可能性下降"). The tier input is never a reason: the
policy's own line says why that tier was chosen. Nor are region, age or a disaster: they are
duties of care (docs/domain.md §4.8), never a reason a debtor is more or less likely to pay; and
of inputs that say the same thing (days past due and the aging bucket) only the strongest is one.
The same file words the policy's why line, contact plan and codes (``format_amounts``,
``fill_text``).

The global plots (beeswarm, mean |SHAP| importance) and one debtor's waterfall are shap's,
titled and labelled in English or Chinese (``plotting.use_language`` puts a CJK font on each of
their texts); the waterfall's ends and title also give the calibrated probability its log-odds
stand for. shap is imported inside the plot functions (it loads pyplot); they return ``Figure``
objects and leave no figure open in pyplot and its interactive mode as it was. Plots carry
feature labels and values only, never an id.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.figure import Figure
from pydantic import AfterValidator, Field, field_validator, model_validator
from sklearn.utils.validation import check_is_fitted

from recoverscore.config import StrictModel, Tier, default_config_path, load_config
from recoverscore.data.facts import AGING_BUCKETS
from recoverscore.data.schemas import TIERS
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.features import STANDARD_FEATURES
from recoverscore.modelling.model import TIER_FEATURE, RecoveryModel
from recoverscore.modelling.plotting import use_language

LANGUAGES: tuple[str, ...] = ("en", "zh")
"""Languages of reason texts and plot labels."""

BASE_VALUE = "base_value"
"""Column of ``contributions`` holding the model's expected log-odds (the SHAP base value)."""

Format = Literal["integer", "number", "amount", "ratio", "flag", "category", "aging_bucket"]
"""How a feature's value is shown; see the head of ``configs/reasons.yaml``."""

_ZERO_FORMATS = ("integer", "number", "flag")  # formats with a "0 or less" wording
_PLACEHOLDERS = ("value", "s", "feature")
_IDENTIFIER = re.compile(r"(^|_)(id|identifier|uuid)$", re.IGNORECASE)
_OTHER_FEATURES = re.compile(r"^\s*(?:Sum of )?(\d+) other features$")  # shap's last row

SMALL_TEXT_ROWS = 16
"""Up to this many rows, texts are built in Python rather than Arrow: an Arrow call's fixed cost
is more than a few rows' string work (a served request is one row)."""


# --- the reason texts (configs/reasons.yaml) ----------------------------------------------------


def _placeholders(allowed: tuple[str, ...]):
    def check(text: str) -> str:
        try:
            fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text)]
        except ValueError as error:
            raise ValueError(
                f"not a valid template ({error}); write literal braces as {{{{ }}}}"
            ) from None
        for field, spec, conversion in fields:
            if field is None:
                continue
            if field not in allowed or spec or conversion:
                shown = ", ".join(f"{{{a}}}" for a in allowed)
                raise ValueError(f"unknown placeholder {{{field}}}; allowed: {shown}")
        return text

    return check


def _text(*allowed: str):
    """Non-empty text with only the ``allowed`` placeholders."""
    return Annotated[str, Field(min_length=1), AfterValidator(_placeholders(allowed))]


Template = _text(*_PLACEHOLDERS)
"""A fact with optional ``{value}``, ``{s}`` (plural ending) and ``{feature}`` (label)."""

Label = _text("feature")

Code = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$", max_length=24)]


class Wording(StrictModel):
    """One feature's texts in one language; see the head of ``configs/reasons.yaml``."""

    label: Label
    fact: Template | None = None
    fact_if_zero: Template | None = None
    fact_if_missing: Template | None = None
    levels: dict[str, str] = Field(default_factory=dict)


class FeatureReason(StrictModel):
    """A feature's reason code, value format, wording in every language, whether it may be a
    reason at all (``reason: false``: a duty of care such as age, region or a disaster, never
    shown to a collector or debtor as a reason) and the ``groups`` of features that say the same
    thing (a debtor gets at most one reason from each group, the strongest)."""

    code: Code
    format: Format
    reason: bool = True
    groups: list[str] = Field(default_factory=list)
    en: Wording
    zh: Wording

    @model_validator(mode="after")
    def _worded(self) -> FeatureReason:
        unworded = [lang for lang in LANGUAGES if getattr(self, lang).fact is None]
        if self.reason and unworded:
            raise ValueError(f"a reason needs a fact in every language; none in {unworded}")
        return self


class DefaultReason(StrictModel):
    """Wording for features without an entry (users' own columns): ``{feature}`` names them."""

    code: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9_{}]+$"), AfterValidator(_placeholders(("feature",)))
    ]
    en: Wording
    zh: Wording

    @model_validator(mode="after")
    def _worded(self) -> DefaultReason:
        if self.en.fact is None or self.zh.fact is None:
            raise ValueError("the default needs a fact in every language")
        return self


class PolicyWords(StrictModel):
    """The pieces of the policy's ``why`` line."""

    values: _text("items")
    item: _text("tier", "amount")
    removed: _text("tiers", "reason")
    notices: _text("items")
    fell_back: _text("rule", "wanted", "chosen")
    rule_names: dict[str, str]
    kept: _text("chosen", "wanted")
    no_baseline: str
    unchecked: _text("items")
    unvalued: str
    experiment: _text("name", "cell", "why")
    explored: str
    separator: str
    list_separator: str
    tier_separator: str


class ContactWords(StrictModel):
    """How a contact plan's steps read."""

    step: _text("day", "time", "channel")
    separator: str
    channels: dict[str, str]


class Words(StrictModel):
    """Words used around the templates, in one language.

    ``raises`` / ``lowers`` wrap a feature's fact into a reason (``{reason}``); numbers are
    grouped in thousands where ``grouping``; amounts read as ``amount`` (``{value}``), or as
    ``amount_wan`` in units of 10,000 (万) from 10,000 up where it is given.
    """

    flag_true: str
    flag_false: str
    missing: str
    raises: _text("reason")
    lowers: _text("reason")
    grouping: bool
    amount: _text("value")
    amount_wan: _text("value") | None = None
    tier_label: str
    tier_levels: dict[Tier, str]
    axis_label: str
    policy: PolicyWords
    contact: ContactWords

    @field_validator("tier_levels")
    @classmethod
    def _every_tier(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [t for t in TIERS if t not in value]
        if missing:
            raise ValueError(f"no name for tier(s) {missing}")
        return value


class LanguageWords(StrictModel):
    en: Words
    zh: Words


class CodeText(StrictModel):
    """What a guardrail or flag code means, in every language."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class ReasonTexts(StrictModel):
    """The whole of ``configs/reasons.yaml``: an entry for every standard feature, a default,
    and the meaning of every guardrail and flag code."""

    words: LanguageWords
    default: DefaultReason
    features: dict[str, FeatureReason]
    codes: dict[Code, CodeText]

    @field_validator("features")
    @classmethod
    def _complete_and_unique(cls, value: dict[str, FeatureReason]) -> dict[str, FeatureReason]:
        missing = [name for name in STANDARD_FEATURES if name not in value]
        if missing:
            raise ValueError(f"no entry for standard feature(s) {missing}")
        if TIER_FEATURE in value:
            raise ValueError(f"{TIER_FEATURE!r} is never a reason; its labels are under words")
        seen: dict[str, str] = {}
        for name, entry in value.items():
            if entry.code in seen:
                raise ValueError(f"code {entry.code!r} used by both {seen[entry.code]} and {name}")
            seen[entry.code] = name
            known = _known_levels(name, entry.format)
            for language in LANGUAGES:
                extra = sorted(set(getattr(entry, language).levels) - set(known or ()))
                if known is not None and extra:
                    raise ValueError(
                        f"{name}.{language}.levels: unknown level(s) {extra}; allowed: {known}"
                    )
        return value


def _known_levels(name: str, fmt: str) -> list[str] | None:
    """The levels a feature can take, where they are fixed; ``None`` if not."""
    if fmt == "aging_bucket":
        return list(AGING_BUCKETS)
    feature = STANDARD_FEATURES.get(name)
    if feature is not None and feature.categories is not None:
        return list(feature.categories)
    return None


def load_reasons(path: str | Path | None = None) -> ReasonTexts:
    """Load ``configs/reasons.yaml`` (or ``path``) into validated ``ReasonTexts``."""
    if path is None:
        return _default_reasons()
    return load_config(path, ReasonTexts)


@lru_cache(maxsize=1)
def _default_reasons() -> ReasonTexts:
    return load_config(default_config_path("reasons.yaml"), ReasonTexts)


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise RecoverscoreError(f"unknown language {language!r}; allowed: {list(LANGUAGES)}")
    return language


# --- contributions --------------------------------------------------------------------------------


def _frame_tiers(model: RecoveryModel, frame: pd.DataFrame, tier: object) -> object:
    """``tier`` as given, else the tier column of ``frame`` (tier-aware models only)."""
    if tier is None and model.tier_column is not None:
        return frame[model.tier_column].to_numpy(dtype=object)
    return tier


def contributions(model: RecoveryModel, frame: pd.DataFrame, tier: object = None) -> pd.DataFrame:
    """SHAP values of the raw log-odds of P(recover | row, tier), one column per model input.

    ``tier`` is a tier name, one per row, or ``None`` for the model's tier column of ``frame``.
    Columns: every model input (including ``tier`` for a tier-aware model) and ``base_value``;
    each row adds up to the model's raw score. The scoring pipeline calls
    ``model.contributions`` on features it has already built; this is the notebook's way in.
    """
    check_is_fitted(model, "kind_")
    features = model.features_.transform(frame)
    names, values = model.contributions(features, _frame_tiers(model, frame, tier))
    return pd.DataFrame(values, index=frame.index, columns=[*names, BASE_VALUE])


def _display_frame(model: RecoveryModel, features: pd.DataFrame, tier: object) -> pd.DataFrame:
    """The features with the tier column a tier-aware model reads, as values are shown."""
    if model.tier_column is None:
        return features
    tiers = [tier] * len(features) if isinstance(tier, str) else tier
    return features.assign(**{TIER_FEATURE: pd.Categorical(tiers, categories=list(TIERS))})


# --- values as text -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One feature's resolved wording in one language."""

    code: str
    format: str
    wording: Wording
    label: str
    reason: bool
    groups: tuple[str, ...]


def _entry(texts: ReasonTexts, name: str, categorical: bool, language: str) -> _Entry:
    spec = texts.features.get(name)
    if spec is not None:
        wording = getattr(spec, language)
        label = wording.label.format(feature=name)
        return _Entry(spec.code, spec.format, wording, label, spec.reason, tuple(spec.groups))
    wording = getattr(texts.default, language)
    code = re.sub(r"[^A-Z0-9_]", "_", texts.default.code.format(feature=name).upper())
    fmt = "category" if categorical else "number"
    return _Entry(code, fmt, wording, wording.label.format(feature=name), True, ())


def _by_unique(values: np.ndarray, show) -> np.ndarray:
    """``show`` applied once per distinct value: formatting costs distinct values, not rows."""
    codes, uniques = pd.factorize(values)
    shown = np.array([show(u) for u in uniques] + [""], dtype=object)
    return shown[codes]  # factorize gives -1 for missing, which picks the trailing ""


def _whole(v: float, words: Words) -> str:
    return f"{v:,.0f}" if words.grouping else f"{v:.0f}"


def _number(v: float, words: Words) -> str:
    text = (f"{v:,.2f}" if words.grouping else f"{v:.2f}").rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _ratio(v: float, words: Words) -> str:
    if v >= 10:
        return _whole(v, words)
    if v >= 1:
        return f"{v:.1f}"
    return f"{v:.2f}" if v >= 0.01 else "<0.01"


def _digits(whole: np.ndarray) -> pa.Array:
    """Non-negative whole numbers as decimal text (integers never print as exponents)."""
    return pc.cast(pa.array(np.asarray(whole, dtype=np.int64)), pa.string())


def _grouped(digits: pa.Array) -> pa.Array:
    """Digits with a thousands separator: each pass splits off one more group of three, as many
    passes as the longest number needs (one for amounts under a million)."""
    longest = pc.max(pc.utf8_length(digits)).as_py() or 0
    for _ in range((longest - 1) // 3):
        digits = pc.replace_substring_regex(digits, r"^(\d+)(\d{3})", r"\1,\2")
    return digits


def fill_one(template: str, fields: dict[str, str]) -> str:
    """``template`` filled once: its literal text and fields, as ``fill_text`` reads them."""
    return "".join(
        literal + ("" if field is None else fields[field])
        for literal, field, _, _ in string.Formatter().parse(template)
    )


def fill_text(template: str, fields: dict[str, str | pa.Array], n: int) -> pa.Array:
    """``template`` filled for ``n`` rows, vectorised in Arrow: each field one text for every
    row or one per row. A few rows (a served request) are filled in Python: each Arrow call
    has a fixed cost."""
    if n <= SMALL_TEXT_ROWS:
        columns = {k: [v] * n if isinstance(v, str) else v.to_pylist() for k, v in fields.items()}
        return pa.array(
            [fill_one(template, {k: c[i] for k, c in columns.items()}) for i in range(n)],
            pa.string(),
        )
    pieces: list[str | pa.Array] = [pa.array([""] * n, pa.string())]
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(literal)
        if field is not None:
            pieces.append(fields[field])
    return pc.binary_join_element_wise(*pieces, "")


def format_amounts(values: np.ndarray, words: Words) -> pa.Array:
    """Amounts of money as ``words`` show them: whole CNY, grouped where ``words.grouping``, and
    from 10,000 up in units of 10,000 (万, two decimals at most) where ``words.amount_wan``."""
    rounded = np.round(np.asarray(values, dtype=float)) + 0.0  # + 0.0: no "-0"
    whole = np.abs(rounded)
    sign = pa.array(np.where(rounded < 0, "-", ""))

    def number(digits: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(sign, _grouped(digits) if words.grouping else digits, "")

    text = fill_text(words.amount, {"value": number(_digits(whole))}, len(whole))
    if words.amount_wan is None:
        return text
    units, hundredths = np.divmod(np.round(whole / 100.0), 100)
    decimals = pc.utf8_rtrim(pc.utf8_lpad(_digits(hundredths), 2, "0"), "0")
    wan = pc.if_else(
        pa.array(hundredths > 0),
        pc.binary_join_element_wise(_digits(units), decimals, "."),
        _digits(units),
    )
    in_wan = fill_text(words.amount_wan, {"value": number(wan)}, len(whole))
    return pc.if_else(pa.array(whole >= 10_000), in_wan, text)


@dataclass(frozen=True)
class _Shown:
    """Values of one feature for some rows, as text, and the wording state of each."""

    text: np.ndarray  # the value as shown (words.missing where missing)
    magnitude: np.ndarray  # the absolute value as shown, for the "0 or less" wording
    plural: np.ndarray  # "" where the value is 1, else "s"
    zero: np.ndarray  # value 0 or less (false flag, no count, no days left)
    missing: np.ndarray


def _show(column: pd.Series, entry: _Entry, words: Words) -> _Shown:
    n = len(column)
    missing = column.isna().to_numpy()
    ok = ~missing
    text = np.full(n, words.missing, dtype=object)
    magnitude = text.copy()
    plural = np.full(n, "s", dtype=object)
    zero = np.zeros(n, dtype=bool)
    levels = entry.wording.levels
    fmt = entry.format
    if fmt == "category":
        raw = column.to_numpy(dtype=object)[ok]
        text[ok] = _by_unique(raw, lambda v: levels.get(str(v), str(v)))
        return _Shown(text, text, plural, zero, missing)
    x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)[ok]
    if fmt == "aging_bucket":
        names = np.array([levels.get(b, b) for b in AGING_BUCKETS], dtype=object)
        text[ok] = names[np.clip(np.round(x).astype(int), 0, len(AGING_BUCKETS) - 1)]
        return _Shown(text, text, plural, zero, missing)
    if fmt == "flag":
        yes = x != 0
        text[ok] = np.where(yes, words.flag_true, words.flag_false)
        zero[ok] = ~yes
        return _Shown(text, text, plural, zero, missing)
    if fmt == "amount":
        with np.errstate(over="ignore"):
            codes, uniques = pd.factorize(np.exp(x))
        shown = format_amounts(uniques, words).to_numpy(zero_copy_only=False)
        text[ok] = shown[codes]
        return _Shown(text, text, plural, zero, missing)
    if fmt == "ratio":
        with np.errstate(over="ignore"):
            text[ok] = _by_unique(np.exp(x), lambda v: _ratio(v, words))
        return _Shown(text, text, plural, zero, missing)
    rounded = np.round(x) + 0.0 if fmt == "integer" else x  # + 0.0 turns -0.0 into 0.0
    show = _whole if fmt == "integer" else _number
    text[ok] = _by_unique(rounded, lambda v: show(v, words))
    magnitude[ok] = _by_unique(np.abs(rounded), lambda v: show(v, words))
    plural[ok] = np.where(np.abs(rounded) == 1, "", "s")
    zero[ok] = rounded <= 0
    return _Shown(text, magnitude, plural, zero, missing)


def _fill(template: str, fields: dict[str, object], n: int) -> np.ndarray:
    """``template`` filled per row: literal parts and per-row (or shared) field values."""
    out = np.full(n, "", dtype=object)
    for literal, field, _, _ in string.Formatter().parse(template):
        if literal:
            out = out + literal
        if field is not None:
            out = out + fields[field]
    return out


def _sentences(entry: _Entry, shown: _Shown, positive: np.ndarray, words: Words) -> np.ndarray:
    """One sentence per row: the fact its value states (plain, zero or missing wording),
    wrapped in the direction of its contribution (``words.raises`` / ``words.lowers``)."""
    wording = entry.wording
    missing = shown.missing
    zero = shown.zero & ~missing
    if wording.fact_if_zero is None or entry.format not in _ZERO_FORMATS:
        zero = np.zeros_like(zero)
    facts = np.empty(len(positive), dtype=object)
    cases = (
        (wording.fact_if_missing or wording.fact, missing, shown.text),
        (wording.fact_if_zero, zero, shown.magnitude),
        (wording.fact, ~missing & ~zero, shown.text),
    )
    for template, mask, values in cases:
        if template is None or not mask.any():
            continue
        fields = {"value": values[mask], "s": shown.plural[mask], "feature": entry.label}
        facts[mask] = _fill(template, fields, int(mask.sum()))
    out = np.empty(len(positive), dtype=object)
    for template, mask in ((words.raises, positive), (words.lowers, ~positive)):
        if mask.any():
            out[mask] = _fill(template, {"reason": facts[mask]}, int(mask.sum()))
    return out


def _join(parts: np.ndarray, separator: str) -> np.ndarray:
    """Join each row's leading non-empty parts; rows with none are missing."""
    out = parts[:, 0].copy()
    for j in range(1, parts.shape[1]):
        has = parts[:, j] != None  # noqa: E711 - elementwise on an object array
        out[has] = out[has] + separator + parts[has, j]
    return out


def _pick(contrib: np.ndarray, groups: list[tuple[str, ...]], k: int) -> np.ndarray:
    """Per row, the columns of the ``k`` strongest non-zero contributions (-1 after the last),
    skipping a column whose group an already picked, stronger column shares."""
    n, m = contrib.shape
    names = sorted({g for gs in groups for g in gs})
    member = np.zeros((m, len(names)), dtype=bool)
    for column, gs in enumerate(groups):
        member[column] = [g in gs for g in names]
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")
    picked = np.full((n, k), -1)
    count = np.zeros(n, dtype=int)
    taken = np.zeros((n, len(names)), dtype=bool)
    rows = np.arange(n)
    for rank in range(m):
        column = order[:, rank]
        ok = (count < k) & (contrib[rows, column] != 0) & ~(taken & member[column]).any(axis=1)
        picked[rows[ok], count[ok]] = column[ok]
        taken[ok] |= member[column[ok]]
        count += ok
    return picked


# --- reasons --------------------------------------------------------------------------------------


def reasons(
    model: RecoveryModel,
    features: pd.DataFrame,
    tier: object = None,
    k: int = 3,
    language: str = "en",
    texts: ReasonTexts | None = None,
    shap_values: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The ``k`` inputs that move each debtor's P(recover) under ``tier`` the most, as text.

    ``features`` are the model's features of the debtors (``model.features_.transform``, which
    the scoring pipeline has already built); ``tier`` one name or one per row (``None`` only for
    a plain model without tiers).

    Ranked by absolute SHAP contribution, leaving out the tier input and the inputs that are
    never a reason (``reason: false``: age, region, a disaster are duties of care), and keeping
    only the strongest of inputs that say the same thing (``groups``). Columns: ``reason_codes``
    (``CODE+`` raises, ``CODE-`` lowers, joined by ``;``), ``top_reasons`` (sentences joined by
    `` | ``) and ``reason_1`` .. ``reason_k``. An input with no effect at all is no reason: a row
    whose inputs have fewer than ``k`` eligible non-zero contributions gets fewer reasons
    (missing after). ``texts`` defaults to ``configs/reasons.yaml``. ``shap_values``, the result
    of ``contributions(model, frame, tier)`` if the caller already has it, saves computing it
    again (TreeSHAP is by far the slowest step).
    """
    if model.tier_column is not None and tier is None:
        raise RecoverscoreError("reasons of a tier-aware model need the tier to explain")
    check_language(language)
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise RecoverscoreError(f"k must be a whole number of reasons, at least 1 (got {k!r})")
    texts = texts or load_reasons()
    words = getattr(texts.words, language)
    if shap_values is None:
        names, values = model.contributions(features, tier)
    else:
        names = list(shap_values.columns[:-1])
        expected = [*model.input_names, BASE_VALUE]
        if list(shap_values.columns) != expected or not shap_values.index.equals(features.index):
            raise RecoverscoreError(
                "shap_values must be contributions(model, frame, tier) of these very rows"
            )
        values = shap_values.to_numpy(dtype=float)
    entries = {  # the tier is never a reason: every other input is a feature column
        i: _entry(texts, name, isinstance(features[name].dtype, pd.CategoricalDtype), language)
        for i, name in enumerate(names)
        if name != TIER_FEATURE
    }
    candidates = [i for i, entry in entries.items() if entry.reason]
    n = len(features)
    picked = _pick(values[:, candidates], [entries[i].groups for i in candidates], k)
    codes = np.full((n, k), None, dtype=object)
    sentences = np.full((n, k), None, dtype=object)
    for position, column in enumerate(candidates):
        rows, ranks = np.nonzero(picked == position)
        if len(rows) == 0:
            continue
        entry = entries[column]
        positive = values[rows, column] > 0
        shown = _show(features[names[column]].iloc[rows], entry, words)
        codes[rows, ranks] = np.where(positive, entry.code + "+", entry.code + "-")
        sentences[rows, ranks] = _sentences(entry, shown, positive, words)
    columns = {
        "reason_codes": _join(codes, ";"),
        "top_reasons": _join(sentences, " | "),
        **{f"reason_{j + 1}": sentences[:, j] for j in range(k)},
    }
    return pd.DataFrame(columns, index=features.index)


# --- plots ----------------------------------------------------------------------------------------


def _labels_and_display(
    design: pd.DataFrame, texts: ReasonTexts, language: str, display: bool
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Plot labels, numeric data (categoricals as level codes) and, if asked, shown values."""
    words = getattr(texts.words, language)
    labels, data, shown = [], [], []
    for name in design.columns:
        column = design[name]
        categorical = isinstance(column.dtype, pd.CategoricalDtype)
        if categorical:
            data.append(column.cat.codes.to_numpy(dtype=float))
            data[-1][data[-1] < 0] = np.nan
        else:
            data.append(column.to_numpy(dtype=float, na_value=np.nan))
        if name == TIER_FEATURE:
            labels.append(words.tier_label)
            if display:
                raw = column.to_numpy(dtype=object)
                shown.append(np.array([words.tier_levels.get(t, t) for t in raw], dtype=object))
            continue
        entry = _entry(texts, name, categorical, language)
        labels.append(entry.label)
        if display:
            text = _show(column, entry, words).text
            if _IDENTIFIER.search(str(name)):
                text = np.full(len(text), "hidden", dtype=object)  # never show an identifier
            shown.append(text)
    display_data = np.column_stack(shown) if display else None
    return labels, np.column_stack(data), display_data


def explanation(
    model: RecoveryModel,
    frame: pd.DataFrame,
    tier: object = None,
    language: str = "en",
    texts: ReasonTexts | None = None,
    display: bool = False,
):
    """A ``shap.Explanation`` of ``frame`` from ``contributions``, labelled in ``language``.

    ``display`` adds the values as shown in reasons (for a waterfall's labels).
    """
    check_language(language)
    import shap

    texts = texts or load_reasons()
    tier = _frame_tiers(model, frame, tier)
    features = model.features_.transform(frame)
    names, values = model.contributions(features, tier)
    design = _display_frame(model, features, tier)[names]
    labels, data, display_data = _labels_and_display(design, texts, language, display)
    return shap.Explanation(
        values=values[:, :-1],
        base_values=values[:, -1],
        data=data,
        display_data=display_data,
        feature_names=labels,
    )


def _sample(frame: pd.DataFrame, tier: object, max_rows: int) -> tuple[pd.DataFrame, object]:
    """At most ``max_rows`` rows, a fixed random sample, with their tiers if given per row."""
    if max_rows < 1:
        raise RecoverscoreError(f"max_rows must be at least 1 (got {max_rows})")
    if len(frame) <= max_rows:
        return frame, tier
    rows = np.sort(np.random.default_rng(0).choice(len(frame), size=max_rows, replace=False))
    if tier is not None and not isinstance(tier, str):
        tier = np.asarray(tier, dtype=object)[rows]
    return frame.iloc[rows], tier


_PLOT_WORDS = {
    "en": {
        "beeswarm": "How each input moved each debtor's chance of recovery ({n:,} debtors)",
        "bar": "Inputs by their average effect on the chance of recovery ({n:,} debtors)",
        "feature_value": "input value",
        "high": "high",
        "low": "low",
        "waterfall": "P(recover) {p:.0%} under {tier}: what moved this debtor from the average",
        "waterfall_plain": "P(recover) {p:.0%}: what moved this debtor from the average",
        "debtor": "this debtor",
        "others": "{n} other inputs",
        "average": "average debtor",
        "scales": "= {raw:.2f} log-odds, P {p:.0%}",
        "waterfall_axis": "log-odds of recovery (the model's raw score; P: the calibrated "
        "probability it stands for)",
        "mean_abs": "mean(|{label}|)",
    },
    "zh": {
        "beeswarm": "各项因素对每位债务人回款可能性的影响（{n:,}位债务人）",  # noqa: RUF001
        "bar": "各项因素对回款可能性的平均影响（{n:,}位债务人）",  # noqa: RUF001
        "feature_value": "因素取值",
        "high": "高",
        "low": "低",
        "waterfall": "{tier}方式下回款概率{p:.0%}：该债务人与平均水平的差异由何而来",  # noqa: RUF001
        "waterfall_plain": "回款概率{p:.0%}：该债务人与平均水平的差异由何而来",  # noqa: RUF001
        "debtor": "该债务人",
        "others": "其余{n}项因素",
        "average": "平均水平",
        "scales": "= 对数几率{raw:.2f}，概率{p:.0%}",  # noqa: RUF001
        "waterfall_axis": "回款的对数几率（模型原始分；概率为其对应的校准后回款概率）",  # noqa: RUF001
        "mean_abs": "{label}绝对值的平均",
    },
}


def _name_the_others(ax, words: dict[str, str]) -> None:
    """shap's "N other features" row in the plot's language (same ticks, so shap's grey
    value labels stay grey)."""
    labels = [
        _OTHER_FEATURES.sub(lambda m: words["others"].format(n=int(m[1])), t.get_text())
        for t in ax.get_yticklabels()
    ]
    ax.set_yticks(ax.get_yticks(), labels)


def tier_names(language: str = "en", texts: ReasonTexts | None = None) -> dict[str, str]:
    """Each tier as a collections team says it in ``language`` (legends, tables, titles)."""
    check_language(language)
    levels = getattr((texts or load_reasons()).words, language).tier_levels
    return {t: levels.get(t, t.replace("_", " ")) for t in TIERS}


def feature_label(name: str, language: str = "en", texts: ReasonTexts | None = None) -> str:
    """A model input as reasons and plots name it in ``language`` (``days past due``)."""
    check_language(language)
    texts = texts or load_reasons()
    if name == TIER_FEATURE:
        return getattr(texts.words, language).tier_label
    return _entry(texts, name, False, language).label


def _global_figure(
    kind: str,
    model: RecoveryModel,
    frame: pd.DataFrame,
    tier: object,
    max_rows: int,
    language: str,
    texts: ReasonTexts | None,
    max_display: int,
) -> Figure:
    """A shap beeswarm or mean-|SHAP| bar chart over a fixed sample of debtors."""
    import shap

    texts = texts or load_reasons()
    exp = explanation(model, *_sample(frame, tier, max_rows), language, texts)
    words = _PLOT_WORDS[language]
    shown = min(max_display, exp.shape[1])
    fig = Figure(figsize=(8, 0.4 * shown + 1.9))
    ax = fig.subplots()
    label = getattr(texts.words, language).axis_label
    if kind == "beeswarm":
        shap.plots.beeswarm(
            exp,
            max_display=max_display,
            ax=ax,
            show=False,
            plot_size=None,
            color_bar_label=words["feature_value"],
        )
        colour_bar = fig.axes[-1]
        colour_bar.set_yticks(colour_bar.get_yticks(), [words["low"], words["high"]])
    else:
        shap.plots.bar(exp, max_display=max_display, ax=ax, show=False)
        label = words["mean_abs"].format(label=label)
    _name_the_others(ax, words)
    ax.set_xlabel(label)
    ax.set_title(words[kind].format(n=exp.shape[0]), fontsize=11)
    use_language(fig, language)
    fig.tight_layout()
    return fig


def beeswarm_figure(
    model: RecoveryModel,
    frame: pd.DataFrame,
    tier: object = None,
    max_rows: int = 5000,
    language: str = "en",
    texts: ReasonTexts | None = None,
    max_display: int = 15,
) -> Figure:
    """SHAP beeswarm of up to ``max_rows`` debtors (a fixed random sample beyond that)."""
    return _global_figure("beeswarm", model, frame, tier, max_rows, language, texts, max_display)


def importance_bar_figure(
    model: RecoveryModel,
    frame: pd.DataFrame,
    tier: object = None,
    max_rows: int = 5000,
    language: str = "en",
    texts: ReasonTexts | None = None,
    max_display: int = 15,
) -> Figure:
    """Mean |SHAP| per input over up to ``max_rows`` debtors: global importance."""
    return _global_figure("bar", model, frame, tier, max_rows, language, texts, max_display)


def _grow_to_fit(fig: Figure, pad: float = 0.25) -> None:
    """Widen the figure around its axes until every label fits, axes keeping their size.

    shap's waterfall writes labels beyond the figure's edge and sizes its arrows' text for the
    axes as drawn, so shrinking the axes (``tight_layout``) would misplace that text.
    """
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_size_inches()
    left, bottom = max(0.0, pad - box.x0), max(0.0, pad - box.y0)
    right, top = max(0.0, box.x1 + pad - width), max(0.0, box.y1 + pad - height)
    new_width, new_height = width + left + right, height + bottom + top
    # twinned axes move together, so take every position before moving any
    for ax, p in [(ax, ax.get_position()) for ax in fig.axes]:
        ax.set_position(
            [
                (p.x0 * width + left) / new_width,
                (p.y0 * height + bottom) / new_height,
                p.width * width / new_width,
                p.height * height / new_height,
            ]
        )
    fig.set_size_inches(new_width, new_height)


def _label_scales(
    fig: Figure,
    model: RecoveryModel,
    exp,
    tier: object,
    language: str,
    texts: ReasonTexts | None,
) -> None:
    """Replace shap's ``E[f(X)]`` and ``f(x)`` marks (raw log-odds that read as probabilities)
    with both scales, labelled, and title the waterfall with the debtor's P(recover)."""
    words = _PLOT_WORDS[language]
    base = float(exp.base_values)
    raw = base + float(np.sum(exp.values))
    p_base, p_raw = model.probability_of_log_odds(np.array([base, raw]))
    ax, average_axis, debtor_axis = fig.axes[:3]  # shap's axes: bars, E[f(X)] mark, f(x) mark
    marks = (
        (average_axis, "\n", words["average"], base, p_base),
        (debtor_axis, "", words["debtor"], raw, p_raw),
    )
    for axis, lead, name, value, p in marks:
        axis.set_xticks(
            axis.get_xticks(), [lead + name, lead + words["scales"].format(raw=value, p=p)]
        )
        first, second = axis.get_xticklabels()
        first.set_horizontalalignment("right")  # the name ends before the mark, the values
        second.set_horizontalalignment("left")  # start after it, however long either is
    _name_the_others(ax, words)
    ax.set_xlabel(words["waterfall_axis"], fontsize=10, labelpad=30)  # below the average mark
    name = None
    if tier is not None:
        name = tier_names(language, texts).get(str(np.atleast_1d(tier)[0]))
    title = words["waterfall"] if name else words["waterfall_plain"]
    debtor_axis.set_title(title.format(p=p_raw, tier=name), fontsize=12, pad=12)


def waterfall_figure(
    model: RecoveryModel,
    frame_row: pd.DataFrame | pd.Series,
    tier: object = None,
    language: str = "en",
    texts: ReasonTexts | None = None,
    max_display: int = 10,
) -> Figure:
    """One debtor's SHAP waterfall, from the base value to the log-odds under ``tier``.

    The bars add up in log-odds (the only scale on which SHAP values add up); the title, the
    two end points and the axis also give the calibrated probability each end stands for, so
    the chart reads as a chance of recovery. ``frame_row`` is a one-row frame or one row
    (``frame.loc[i]``). Labels are feature labels and shown values in ``language``; ids and the
    frame's index never appear.
    """
    check_language(language)
    import matplotlib.pyplot as plt
    import shap
    from matplotlib.backend_bases import FigureCanvasBase

    row = frame_row
    if isinstance(frame_row, pd.Series):  # each cell's own type: dates stay dates
        row = pd.DataFrame({column: pd.Series([v]) for column, v in frame_row.items()})
    if len(row) != 1:
        raise RecoverscoreError(f"waterfall_figure explains one debtor; got {len(row)} rows")
    texts = texts or load_reasons()
    exp = explanation(model, row, tier, language, texts, display=True)[0]
    # shap's waterfall draws on pyplot's current figure and switches interactive mode off:
    # draw on a fresh figure, restore the mode, and take the figure out of pyplot's hands.
    with plt.ioff():
        fig = plt.figure()
        try:
            shap.plots.waterfall(exp, max_display=max_display, show=False)
            _label_scales(fig, model, exp, _frame_tiers(model, row, tier), language, texts)
            use_language(fig, language)
            _grow_to_fit(fig)
        finally:
            plt.close(fig)
    FigureCanvasBase(fig)  # a plain canvas, like the other figures: no backend window attached
    return fig
