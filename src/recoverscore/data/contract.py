"""A model's input contract: the columns its package reads, derived from its training file.

The portfolio contract (``schemas.Portfolio``) describes the standard file. A model trained on a
user's own file reads fewer standard columns (features switched off), its own extra columns, and
names its id column its own way; scoring must check *that* file, not the standard one. An
``InputContract`` records which columns those are; its pandera schema is rebuilt from the
standard column definitions and the cross-column rules whose columns are all present, so every
check a standard column has travels with it. It is saved in the model package as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import Field, model_validator

from recoverscore.config import StrictModel
from recoverscore.data.schemas import (
    Portfolio,
    required_columns,
    row_checks_within,
    schema_reference,
)
from recoverscore.data.validation import ValidationReport, validate

STANDARD_ID = "debtor_id"
_DATED = ("due_date", "last_payment_date", "last_acknowledgment_date")


class InputContract(StrictModel):
    """The columns a model package reads: standard ones, the user's own, and the id's name."""

    id_column: str = Field(default=STANDARD_ID, min_length=1)
    standard: list[str] = Field(default_factory=list)
    extra_numeric: list[str] = Field(default_factory=list)
    extra_categorical: list[str] = Field(default_factory=list)

    model_config = StrictModel.model_config | {"ignored_types": (cached_property,)}

    @model_validator(mode="after")
    def _known(self) -> InputContract:
        known = set(Portfolio.to_schema().columns)
        unknown = sorted(set(self.standard) - known)
        if unknown:
            raise ValueError(f"standard: {unknown} are not portfolio columns")
        return self

    @classmethod
    def derive(
        cls,
        columns: Iterable[str],
        required: Iterable[str],
        id_column: str = STANDARD_ID,
        extra_numeric: Iterable[str] = (),
        extra_categorical: Iterable[str] = (),
    ) -> InputContract:
        """The contract of a model trained on a file with ``columns`` whose features read
        ``required``: every standard column the file had or the features need, plus the
        user's own columns. A dated file gets ``as_of`` (scoring fills it when absent)."""
        extras = set(extra_numeric) | set(extra_categorical)
        known = [c for c in Portfolio.to_schema().columns if c != STANDARD_ID]
        present = (set(columns) | set(required)) - extras - {id_column}
        standard = [c for c in known if c in present]
        if any(c in standard for c in _DATED) and "as_of" not in standard:
            standard.insert(0, "as_of")
        return cls(
            id_column=id_column,
            standard=standard,
            extra_numeric=list(extra_numeric),
            extra_categorical=list(extra_categorical),
        )

    @property
    def columns(self) -> list[str]:
        """Every column the contract names, id first."""
        return [self.id_column, *self.standard, *self.extra_numeric, *self.extra_categorical]

    @property
    def required(self) -> list[str]:
        """Columns a file must have (optional ones such as ``accrued_interest`` may be absent;
        ``as_of`` is filled by scoring)."""
        return required_columns(self.schema)

    @property
    def dated(self) -> bool:
        """Whether rows carry a decision date (``as_of``)."""
        return "as_of" in self.standard

    @cached_property
    def schema(self) -> pa.DataFrameSchema:
        """The pandera schema: standard definitions, the user's columns, the rules that apply.

        The portfolio's optional columns (``evidence_complete``, ``bank_balance``...) are in
        every contract: a file may leave them out, and where it has them they are parsed and
        checked before any rule reads them.
        """
        base = Portfolio.to_schema()
        columns = {self.id_column: base.columns[STANDARD_ID].set_name(self.id_column)}
        columns |= {name: base.columns[name] for name in self.standard}
        columns |= {
            name: column
            for name, column in base.columns.items()
            if not column.required and name not in columns
        }
        for name in self.extra_numeric:
            columns[name] = pa.Column(float, nullable=True, name=name, description="Own column")
        for name in self.extra_categorical:
            columns[name] = pa.Column(str, nullable=True, name=name, description="Own column")
        present = {STANDARD_ID if c == self.id_column else c for c in columns}
        return pa.DataFrameSchema(
            columns,
            checks=row_checks_within(Portfolio, present),
            coerce=True,
            strict=False,
            name="InputContract",
        )

    def validate(
        self,
        frame: pd.DataFrame,
        as_of: pd.Timestamp | str | None = None,
        rows: np.ndarray | None = None,
    ) -> ValidationReport:
        """``validation.validate`` against this contract (``as_of`` fills a missing column)."""
        return validate(frame, self.schema, as_of=as_of if self.dated else None, rows=rows)

    def reference(self) -> str:
        """The contract as a Markdown table (``recoverscore schema --model``)."""
        return schema_reference(self.schema)


PORTFOLIO_CONTRACT = InputContract(
    standard=[c for c in Portfolio.to_schema().columns if c != STANDARD_ID]
)
"""The standard portfolio file's contract."""
