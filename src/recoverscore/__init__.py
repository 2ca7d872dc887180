"""recoverscore: recovery likelihood and collection-strategy scoring for debt portfolios.

``recoverscore.score(portfolio, model)`` recommends a tier per debtor and says why; see
``recoverscore.scoring.pipeline.score``. It is loaded on first use, so the command line does
not import LightGBM and SHAP for commands that need neither.
"""

from recoverscore.data.schemas import TIERS

__all__ = ["TIERS", "__version__", "score"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``recoverscore.score`` without importing LightGBM and SHAP for every CLI command."""
    if name == "score":
        from recoverscore.scoring.pipeline import score

        return score
    raise AttributeError(f"module 'recoverscore' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Tab completion lists ``score`` before it is first loaded."""
    return sorted({*globals(), *__all__})
