"""recoverscore: recovery likelihood and collection-strategy scoring for debt portfolios."""

from recoverscore.data.schemas import TIERS

__all__ = ["TIERS", "__version__", "score"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``recoverscore.score`` without importing LightGBM and SHAP for every CLI command."""
    if name == "score":
        from recoverscore.scoring.pipeline import score

        return score
    raise AttributeError(f"module 'recoverscore' has no attribute {name!r}")
