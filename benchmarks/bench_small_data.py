"""Small files with only their own columns: the chosen model against the usual baselines.

Prints figures, never pass/fail. Each file is made here (a seed fixes it): a thousand to five
thousand rows, an id, a binary outcome and the file's own numeric and categorical columns, no
dates and no tiers, trained through the bring-your-own-data path (every standard feature
switched off, the columns passed as ``extra_numeric`` / ``extra_categorical``). On the same five
stratified folds, out of fold:

- ``chosen``: ``RecoveryModel`` with ``kind: auto`` (its own inner cross-validation picks
  LightGBM or the scorecard from the training folds only: nested, no peeking),
- ``default LightGBM``: ``lightgbm.LGBMClassifier()`` with library defaults, categoricals as
  pandas categories,
- ``WoE scorecard``: optbinning's ``BinningProcess`` into a ``LogisticRegression``, the
  textbook pipeline,
- and, for the record, ``RecoveryModel`` forced to ``lightgbm`` and to ``scorecard``.

    .venv/bin/python benchmarks/bench_small_data.py [--folds 5]

Target (issue 10): chosen >= max(default LightGBM, WoE scorecard) - 0.002 on every file.
"""

from __future__ import annotations

import argparse
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline

from recoverscore.modelling.features import STANDARD_FEATURES
from recoverscore.modelling.model import TrainConfig
from timing import timed


def _logistic(rng: np.random.Generator, logit: np.ndarray, base_rate: float) -> np.ndarray:
    shift = np.log(base_rate / (1 - base_rate)) - np.median(logit)
    return rng.random(len(logit)) < 1 / (1 + np.exp(-(logit + shift)))


def credit_file(seed: int = 1, n: int = 1_000) -> tuple[pd.DataFrame, list[str], list[str]]:
    """A consumer-credit file: amounts, terms, ages, incomes and a handful of categories."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(8.0, 0.8, n), -1)
    income = np.round(rng.lognormal(10.3, 0.5, n), -2)
    term = rng.choice([6, 12, 18, 24, 36, 48, 60], n)
    age = rng.integers(19, 75, n)
    purpose = rng.choice(["car", "furniture", "education", "business", "repairs", "other"], n)
    housing = rng.choice(["own", "rent", "free"], n, p=[0.6, 0.3, 0.1])
    savings = rng.choice(["none", "<1k", "1k-5k", ">5k"], n, p=[0.4, 0.3, 0.2, 0.1])
    effects = {"car": 0.2, "furniture": 0.0, "education": -0.3, "business": -0.4}
    logit = (
        -0.9 * np.log(amount / income * 12)
        - 0.02 * term
        + 0.015 * np.clip(age, 20, 60)
        + pd.Series(purpose).map(effects).fillna(0.1).to_numpy()
        + 0.5 * (housing == "own")
        + pd.Series(savings).map({"none": -0.4, "<1k": 0, "1k-5k": 0.3, ">5k": 0.7}).to_numpy()
    )
    frame = pd.DataFrame(
        {
            "loan_id": [f"C{i:05d}" for i in range(n)],
            "amount": amount,
            "income": income,
            "term_months": term,
            "age": age,
            "purpose": purpose,
            "housing": housing,
            "savings": savings,
            "repaid": _logistic(rng, logit, 0.7),
        }
    )
    return frame, ["amount", "income", "term_months", "age"], ["purpose", "housing", "savings"]


def monotone_file(seed: int = 2, n: int = 2_000) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Strong monotone effects, some saturating, with missing values: scorecard country."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6, n))
    utilisation = rng.beta(2, 3, n)
    logit = (
        1.1 * x[0]
        - 0.9 * x[1]
        + 0.7 * np.tanh(2 * x[2])
        - 1.5 * utilisation
        + 0.4 * np.minimum(x[3], 1.0)
    )
    region = rng.choice(["north", "south", "east", "west"], n)
    channel = rng.choice(["branch", "online", "broker"], n)
    logit += pd.Series(channel).map({"branch": 0.3, "online": 0.0, "broker": -0.4}).to_numpy()
    frame = pd.DataFrame(
        {
            "account": [f"M{i:05d}" for i in range(n)],
            "score_a": x[0],
            "score_b": x[1],
            "score_c": x[2],
            "score_d": x[3],
            "noise_e": x[4],
            "noise_f": x[5],
            "utilisation": utilisation,
            "region": region,
            "channel": channel,
            "repaid": _logistic(rng, logit, 0.5),
        }
    )
    frame.loc[rng.random(n) < 0.1, "score_b"] = np.nan  # a bureau that sometimes has no file
    numeric = ["score_a", "score_b", "score_c", "score_d", "noise_e", "noise_f", "utilisation"]
    return frame, numeric, ["region", "channel"]


def interaction_file(seed: int = 3, n: int = 5_000) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Thresholds and interactions a tree finds and a scorecard cannot: LightGBM country."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5, n))
    segment = rng.choice(["a", "b", "c", "d", "e"], n)
    product = rng.choice(["card", "loan", "overdraft"], n)
    logit = (
        1.4 * ((x[0] > 0) & np.isin(segment, ["a", "b"]))
        - 1.2 * ((x[1] > 0.5) & (product == "card"))
        + 0.8 * np.sign(x[2]) * np.sign(x[3])
        + 0.3 * x[4]
    )
    frame = pd.DataFrame(
        {
            "case_no": [f"I{i:05d}" for i in range(n)],
            **{f"v{j}": x[j] for j in range(5)},
            "segment": segment,
            "product": product,
            "repaid": _logistic(rng, logit, 0.4),
        }
    )
    return frame, [f"v{j}" for j in range(5)], ["segment", "product"]


def config_for(id_column: str, numeric: list[str], categorical: list[str]) -> TrainConfig:
    """The README's bring-your-own-data settings for a file with only its own columns."""
    return TrainConfig.model_validate(
        {
            "data": {"id_column": id_column, "target": "repaid", "tier_column": None},
            "features": {
                "disabled": list(STANDARD_FEATURES),
                "extra_numeric": numeric,
                "extra_categorical": categorical,
            },
        }
    )


def default_lightgbm(train: pd.DataFrame, test: pd.DataFrame, columns, categorical) -> np.ndarray:
    def prepared(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[columns].copy()
        for name in categorical:
            out[name] = pd.Categorical(out[name], categories=sorted(train[name].unique()))
        return out

    model = lgb.LGBMClassifier(verbose=-1).fit(prepared(train), train["repaid"].astype(int))
    return model.predict_proba(prepared(test))[:, 1]


def woe_scorecard(train: pd.DataFrame, test: pd.DataFrame, columns, categorical) -> np.ndarray:
    from optbinning import BinningProcess

    pipeline = make_pipeline(
        BinningProcess(columns, categorical_variables=categorical),
        LogisticRegression(max_iter=1000),
    )
    with warnings.catch_warnings():  # optbinning's per-variable notices
        warnings.simplefilter("ignore")
        pipeline.fit(train[columns], train["repaid"].astype(int))
        return pipeline.predict_proba(test[columns])[:, 1]


def compare(name: str, frame: pd.DataFrame, numeric, categorical, folds: int) -> dict:
    id_column = frame.columns[0]
    config = config_for(id_column, numeric, categorical)
    columns = [*numeric, *categorical]
    y = frame["repaid"].to_numpy(int)
    candidates = {
        "chosen": lambda tr, te: clone(config.estimator()).fit(tr, tr["repaid"].astype(int)),
        "recoverscore lightgbm": lambda tr, te: (
            clone(config.estimator()).set_params(kind="lightgbm").fit(tr, tr["repaid"].astype(int))
        ),
        "recoverscore scorecard": lambda tr, te: (
            clone(config.estimator()).set_params(kind="scorecard").fit(tr, tr["repaid"].astype(int))
        ),
    }
    oof = {key: np.empty(len(frame)) for key in [*candidates, "default LightGBM", "WoE scorecard"]}
    chosen_kinds = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train_idx, test_idx in splitter.split(frame, y):
        train, test = frame.iloc[train_idx], frame.iloc[test_idx]
        for key, fit in candidates.items():
            model = fit(train, test)
            oof[key][test_idx] = model.recovery_probability(test)
            if key == "chosen":
                chosen_kinds.append(model.kind_)
        oof["default LightGBM"][test_idx] = default_lightgbm(train, test, columns, categorical)
        oof["WoE scorecard"][test_idx] = woe_scorecard(train, test, columns, categorical)
    auc = {key: roc_auc_score(y, p) for key, p in oof.items()}
    best = max(auc["default LightGBM"], auc["WoE scorecard"])
    kinds = ", ".join(f"{k} x{chosen_kinds.count(k)}" for k in sorted(set(chosen_kinds)))
    return {
        "file": name,
        "rows": len(frame),
        **{key: round(value, 4) for key, value in auc.items()},
        "chosen - best baseline": round(auc["chosen"] - best, 4),
        "chosen kinds": kinds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for name, make in (
        ("credit (1,000)", credit_file),
        ("monotone (2,000)", monotone_file),
        ("interactions (5,000)", interaction_file),
    ):
        frame, numeric, categorical = make()
        row, seconds = timed(
            lambda f=frame, n=numeric, c=categorical, m=name: compare(m, f, n, c, args.folds)
        )
        rows.append({**row, "seconds": round(seconds, 1)})
        print(f"{name}: done in {seconds:.0f} s", flush=True)
    table = pd.DataFrame(rows).set_index("file")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"\n{args.folds}-fold out-of-fold AUC on the same folds")
        print(table.T.to_string())
    print("\ntarget: chosen - best baseline >= -0.002 on every file")


if __name__ == "__main__":
    main()
