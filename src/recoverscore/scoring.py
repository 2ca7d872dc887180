"""Scoring a portfolio: validated rows in, one recommendation per debtor out.

``score`` is the one call a notebook needs: the model's probabilities under every tier, the
policy's choice with its guardrails, and the SHAP reasons, in the columns of ``schemas.Scored``.
"""

from __future__ import annotations

import pandas as pd

from recoverscore import explain, policy
from recoverscore.costs import CostConfig, load_costs
from recoverscore.errors import RecoverscoreError
from recoverscore.model import RecoveryModel
from recoverscore.schemas import Portfolio, Scored, validate


def score(
    portfolio: pd.DataFrame,
    model: RecoveryModel,
    as_of: str | pd.Timestamp | None = None,
    rule: str = "value",
    policy_config: policy.PolicyConfig | None = None,
    costs: CostConfig | None = None,
    capacity: dict[str, int | None] | None = None,
    reasons: bool = True,
    top_k: int = 3,
    language: str = "en",
    model_version: str | None = None,
) -> pd.DataFrame:
    """Recommend a tier for every debtor of ``portfolio`` and say why.

    ``as_of`` overrides the file's snapshot date (or supplies it). Rows that break the portfolio
    contract are a ``RecoverscoreError`` here; use ``schemas.validate`` to split them off first.
    """
    frame = portfolio if as_of is None else portfolio.drop(columns="as_of", errors="ignore")
    report = validate(frame, Portfolio, as_of=as_of)
    if not report.is_valid:
        first = report.failures.iloc[0]
        raise RecoverscoreError(
            f"{len(report.rejected_rows)} of {report.n_rows} rows break the portfolio contract "
            f"(first: row {first['row']}, {first['column']}: {first['check']}); "
            "split them off with schemas.validate"
        )
    valid = report.valid
    settings = policy_config or policy.load_policy_config()
    matrix = model.tier_matrix(valid)
    cases = policy.Cases.build(valid, matrix, settings.limitation_years)
    decision = policy.decide(cases, settings, costs or load_costs(), rule, capacity)
    out = pd.concat([valid[["debtor_id", "as_of"]], matrix, decision], axis=1).assign(
        model_version=model_version or f"sha:{model.fingerprint[:12]}"
    )
    if reasons:
        text = explain.reasons(
            model, valid, decision["recommended_tier"].to_numpy(), top_k, language
        )
        out["top_reasons"] = text["top_reasons"].to_numpy()
        out["reason_codes"] = text["reason_codes"].to_numpy()
    else:
        out["top_reasons"] = None
    columns = list(Scored.to_schema().columns)
    extra = [c for c in out.columns if c not in columns]
    return Scored.validate(out[columns + extra].reset_index(drop=True))
