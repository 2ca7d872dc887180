"""The model package: everything scoring needs, saved together and covered by one hash.

A registered version must give the same answer on any machine whatever YAML files happen to be
installed there, so the package carries, besides the model itself (LightGBM's native text model
or the scorecard's JSON) and its calibration: the feature settings, the input contract derived
from the training columns, the policy settings, the cost schedules, the reason texts and the
drift reference. Scoring with other policy or cost settings is an explicit override
(``with_settings``) that the scored rows record in their ``overrides`` column.

On disk a package is a folder of ``model.txt`` (LightGBM only), ``package.json`` and
``package.sha256``, the SHA-256 of the other two files' exact bytes. Loading recomputes it and
refuses a package whose bytes changed, and checks the LightGBM text's structure before LightGBM
parses it (a malformed tree can abort the process inside LightGBM). Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from recoverscore.config import parse_config
from recoverscore.data.contract import InputContract
from recoverscore.data.costs import CostConfig, load_costs
from recoverscore.data.facts import facts_from_columns
from recoverscore.data.tables import write_text
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.explain import ReasonTexts, load_reasons
from recoverscore.modelling.model import RecoveryModel
from recoverscore.scoring import drift
from recoverscore.strategy.experiment import Experiment
from recoverscore.strategy.logging_policy import LoggingPolicyModel
from recoverscore.strategy.policy import PolicyConfig, load_policy_config, unchecked_rules

FORMAT_VERSION = 3
MODEL_FILE, PACKAGE_FILE, HASH_FILE = "model.txt", "package.json", "package.sha256"
REFERENCE_ROWS = 50_000  # training rows profiled for drift checks (deciles need no more)


def _digest(text: str | bytes | None, document: bytes) -> str:
    """SHA-256 over the model text and the package JSON, each named and length-prefixed."""
    sha = hashlib.sha256()
    model = text.encode() if isinstance(text, str) else text or b""
    for name, data in ((MODEL_FILE, model), (PACKAGE_FILE, document)):
        sha.update(f"{name}:{len(data)}:".encode())
        sha.update(data)
    return sha.hexdigest()


def settings_digest(settings: PolicyConfig | CostConfig) -> str:
    """A short fingerprint of policy or cost settings, for scored rows and resume checks."""
    return "sha:" + hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ModelPackage:
    """A fitted model with the settings, texts and contract it is scored with."""

    model: RecoveryModel
    contract: InputContract
    policy: PolicyConfig
    costs: CostConfig
    texts: ReasonTexts
    reference: dict | None = None
    logging_policy: LoggingPolicyModel | None = None  # the history's P(tier | x): support
    metadata: dict = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        model: RecoveryModel,
        *,
        id_column: str = "debtor_id",
        policy: PolicyConfig | None = None,
        costs: CostConfig | None = None,
        texts: ReasonTexts | None = None,
        training: pd.DataFrame | None = None,
        logging_policy: LoggingPolicyModel | None = None,
        metadata: dict | None = None,
    ) -> ModelPackage:
        """Package a fitted model with settings (the installed YAML files by default).

        ``training``: training rows to profile for drift checks (a fixed sample of at most
        ``REFERENCE_ROWS``); without them the package has no drift reference.
        ``logging_policy``: how the history's collectors chose tiers (``training.train`` fits
        it); the safe policy departs from today's tier only where it gives support.
        """
        reference = None
        if training is not None:
            rows = training.sample(n=min(len(training), REFERENCE_ROWS), random_state=model.seed)
            features = model.features_.transform(rows)
            reference = drift.reference(features, model.tier_probabilities(features=features))
        return cls(
            model=model,
            contract=model.input_contract(id_column),
            policy=policy or load_policy_config(),
            costs=costs or load_costs(),
            texts=texts or load_reasons(),
            reference=reference,
            logging_policy=logging_policy,
            metadata={
                "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "versions": {
                    p: version(p)
                    for p in ("recoverscore", "lightgbm", "scikit-learn", "pandas", "numpy")
                },
                **(metadata or {}),
            },
        )

    # -- identity --

    def _serialise(self) -> tuple[str | None, bytes]:
        text, state = self.model.state()
        document = {
            "format_version": FORMAT_VERSION,
            "model": state,
            "contract": self.contract.model_dump(),
            "policy": self.policy.model_dump(mode="json"),
            "costs": self.costs.model_dump(mode="json"),
            "texts": self.texts.model_dump(mode="json"),
            "reference": self.reference,
            "logging_policy": None
            if self.logging_policy is None
            else self.logging_policy.to_dict(),
            "metadata": self.metadata,
        }
        return text, json.dumps(document, indent=1, ensure_ascii=False).encode()

    @property
    def digest(self) -> str:
        """SHA-256 of the package's content as saved (the same before and after saving)."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            cached = _digest(*self._serialise())
            object.__setattr__(self, "_digest", cached)
        return cached

    @property
    def label(self) -> str:
        """The version label of an unregistered package: ``sha:`` and 12 hex digits."""
        return f"sha:{self.digest[:12]}"

    def unchecked_rules(self) -> list[str]:
        """Guardrail and flag codes this package's input cannot check (missing columns)."""
        return unchecked_rules(self.policy, facts_from_columns({*self.contract.standard, "as_of"}))

    # -- explicit overrides --

    def with_settings(
        self, policy: PolicyConfig | None = None, costs: CostConfig | None = None
    ) -> ModelPackage:
        """The same model scored with other policy or cost settings, recorded in the output."""
        overrides = dict(self.overrides)
        if policy is not None and policy != self.policy:
            overrides["policy"] = settings_digest(policy)
        if costs is not None and costs != self.costs:
            overrides["costs"] = settings_digest(costs)
        return replace(
            self, policy=policy or self.policy, costs=costs or self.costs, overrides=overrides
        )

    def with_experiment(self, experiment: Experiment) -> ModelPackage:
        """The same package scored with a strategy experiment (replacing its own, if any)."""
        settings = parse_config(
            {**self.policy.model_dump(), "experiment": experiment.model_dump()},
            PolicyConfig,
            "experiment",
        )
        return self.with_settings(policy=settings)

    # -- files --

    def save(self, directory: str | Path) -> Path:
        """Write ``model.txt`` (LightGBM), ``package.json`` and, last, ``package.sha256``."""
        if self.overrides:
            raise RecoverscoreError(
                "a package scored with overridden settings is not saved: build a new package "
                "with those settings instead"
            )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        text, document = self._serialise()
        (directory / HASH_FILE).unlink(missing_ok=True)  # incomplete until the hash lands
        if text is not None:
            write_text(text, directory / MODEL_FILE)
        else:
            (directory / MODEL_FILE).unlink(missing_ok=True)
        write_text(document.decode(), directory / PACKAGE_FILE)
        write_text(_digest(text, document) + "\n", directory / HASH_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ModelPackage:
        """Read a package folder; refuse it, in one line, if any byte changed since saving."""
        directory = Path(directory)
        try:
            recorded = (directory / HASH_FILE).read_bytes()
            document = (directory / PACKAGE_FILE).read_bytes()
            model_path = directory / MODEL_FILE
            model_bytes = model_path.read_bytes() if model_path.is_file() else None
        except FileNotFoundError as error:
            raise RecoverscoreError(
                f"{directory} is not a recoverscore model package: "
                f"{Path(error.filename).name} is missing"
            ) from None
        except OSError as error:
            raise RecoverscoreError(f"cannot read the model package {directory}: {error}") from None
        if recorded != (_digest(model_bytes, document) + "\n").encode():
            raise RecoverscoreError(
                f"{directory} was changed after it was saved (its files do not match "
                f"{HASH_FILE}): refusing to score with it; re-save or re-register the model"
            )
        try:
            spec = json.loads(document)
            text = None if model_bytes is None else model_bytes.decode()
        except ValueError:  # JSON or UTF-8 that was written this way and re-signed
            raise RecoverscoreError(f"{directory} holds files recoverscore cannot read") from None
        if spec.get("format_version") != FORMAT_VERSION:
            raise RecoverscoreError(
                f"{directory}: package format {spec.get('format_version')!r} is not "
                f"{FORMAT_VERSION}; retrain the model with this version of recoverscore"
            )
        try:
            if spec["model"]["kind"] != "scorecard":
                if text is None:
                    raise RecoverscoreError(f"{directory}: {MODEL_FILE} is missing")
                check_model_text(text)
            package = cls(
                model=RecoveryModel.from_state(text, spec["model"]),
                contract=InputContract.model_validate(spec["contract"]),
                policy=PolicyConfig.model_validate(spec["policy"]),
                costs=CostConfig.model_validate(spec["costs"]),
                texts=ReasonTexts.model_validate(spec["texts"]),
                reference=spec["reference"],
                logging_policy=(
                    None
                    if spec["logging_policy"] is None
                    else LoggingPolicyModel.from_dict(spec["logging_policy"])
                ),
                metadata=spec["metadata"],
            )
        except (KeyError, TypeError, ValueError) as error:  # re-signed by hand, or a bug
            raise RecoverscoreError(
                f"{directory}: {PACKAGE_FILE} does not describe a model package "
                f"({type(error).__name__}); re-save or re-register the model"
            ) from None
        object.__setattr__(package, "_digest", _digest(model_bytes, document))
        return package


_ARRAY_LENGTHS = {  # per tree: arrays of one entry per split, and per leaf
    "split_feature": -1,
    "threshold": -1,
    "decision_type": -1,
    "left_child": -1,
    "right_child": -1,
    "leaf_value": 0,
}


def check_model_text(text: str) -> None:
    """Check a LightGBM text model's structure before LightGBM parses it.

    LightGBM trusts ``tree_sizes`` and each tree's array lengths; a model text edited by hand
    (or damaged) can make it abort the whole process. Every tree block must have the size its
    header says, and its arrays the lengths its number of leaves implies, with children that
    point inside the tree.
    """
    problem = _model_text_problem(text)
    if problem:
        raise RecoverscoreError(f"model.txt is not a valid LightGBM model: {problem}")


def _model_text_problem(text: str) -> str | None:
    sizes = re.search(r"^tree_sizes=([0-9 ]*)$", text, re.MULTILINE)
    if not text.startswith("tree\n") or sizes is None:
        return "no LightGBM header"
    start = text.find("\nTree=0\n")
    if start < 0:
        return "no trees"
    position = start + 1
    for index, size in enumerate(int(s) for s in sizes.group(1).split()):
        block = text[position : position + size]
        if not block.startswith(f"Tree={index}\n"):
            return f"tree {index} is not where tree_sizes says"
        problem = _tree_problem(block)
        if problem:
            return f"tree {index}: {problem}"
        position += size
    if not text[position:].lstrip("\n").startswith("end of trees"):
        return "trees do not end where tree_sizes says"
    return None


def _tree_problem(block: str) -> str | None:
    fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
    try:
        leaves = int(fields["num_leaves"])
    except (KeyError, ValueError):
        return "no num_leaves"
    if leaves < 1:
        return "num_leaves below 1"
    if leaves == 1:
        return None if "leaf_value" in fields else "no leaf_value"
    for name, extra in _ARRAY_LENGTHS.items():
        values = fields.get(name, "").split()
        if len(values) != leaves + extra:
            return f"{name} has {len(values)} entries for {leaves} leaves"
    try:
        children = np.array(
            [int(v) for v in fields["left_child"].split() + fields["right_child"].split()]
        )
        np.array([float(v) for v in fields["leaf_value"].split()])
    except ValueError:
        return "a non-numeric entry"
    if ((children >= leaves - 1) | (children < -leaves)).any():
        return "a child index outside the tree"
    return None
