"""recoverscore: recovery likelihood and collection-strategy scoring for debt portfolios."""

from recoverscore.schemas import TIERS

__all__ = ["TIERS", "__version__"]
__version__ = "0.1.0"
