"""Loading YAML configuration into typed pydantic objects.

Configuration is data: each stage owns a pydantic model of its section and this module turns a
YAML file into it, so that a wrong key or value fails at load time with a message that names the
key and says what is allowed, instead of failing deep inside a computation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from recoverscore.data.schemas import TIERS
from recoverscore.errors import RecoverscoreError

# The repository's configs/ folder, linked into the package so installed copies carry it too.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

M = TypeVar("M", bound=BaseModel)
V = TypeVar("V")


def _every_tier(value: dict[str, V]) -> dict[str, V]:
    if set(value) != set(TIERS):
        raise ValueError(f"needs exactly the tiers {list(TIERS)}, got {sorted(value)}")
    return value


def _known_tier(value: str) -> str:
    if value not in TIERS:
        raise ValueError(f"unknown tier {value!r}; allowed: {list(TIERS)}")
    return value


PerTier = Annotated[dict[str, V], AfterValidator(_every_tier)]
"""A mapping with exactly one entry per tier, e.g. ``PerTier[float]``."""

Tier = Annotated[str, AfterValidator(_known_tier)]
"""One of the tier identifiers."""


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem, each naming the dotted key path, the complaint and the value."""
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<root>"
        value = item.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        parts.append(f"{key}: {item['msg']}{shown}")
    return f"{source}: " + "; ".join(parts)


def parse_config(data: object, model: type[M], source: str = "config") -> M:
    """Validate an already-loaded mapping against ``model``; errors name the key."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RecoverscoreError(describe_validation_error(error, source)) from None


def load_config(path: str | Path, model: type[M]) -> M:
    """Read a YAML file and validate it; a missing file or bad YAML is a one-line error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecoverscoreError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecoverscoreError(f"cannot read config file {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RecoverscoreError(f"{path}: invalid YAML{where}") from None
    return parse_config(data, model, source=str(path))


def default_config_path(name: str) -> Path:
    """Path of a bundled default config such as ``synthetic.yaml``."""
    return CONFIG_DIR / name
