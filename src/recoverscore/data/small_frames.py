"""Small frames (a served request, a tiny file) validated without pandera's fixed costs.

pandera's lazy validation costs tens of milliseconds however few the rows, most of a served
request. ``CompiledContract`` compiles a contract's checks once into cell readers and predicates
and reports the same failures with the same texts and the same typed rows as the pandera path
(``validation.validate`` picks the path; a property test holds the two equal).
"""

from __future__ import annotations

import math
import re
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api.internals import create_dataframe_from_blocks

from recoverscore.data.parsing import (
    EARLIEST,
    FALSE_WORDS,
    INT64_LIMIT,
    LATEST,
    TRUE_WORDS,
    blank_cells,
    concat_failures,
    parse_column,
)
from recoverscore.data.schemas import ROW_RULES, column_kinds

_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")
"""An ISO day, perhaps with a time of day and no offset: NumPy reads these as pandas does."""
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SCALARS = (str, bool, int, float, np.bool_, np.integer, np.floating)
_FIRST_DAY, _LAST_DAY = (np.datetime64(day.date(), "D") for day in (EARLIEST, LATEST))
_SCALAR_CHECKS: dict[str, Callable[[dict], Callable[[object], bool]]] = {
    "greater_than": lambda s: lambda x: x > s["min_value"],
    "greater_than_or_equal_to": lambda s: lambda x: x >= s["min_value"],
    "less_than": lambda s: lambda x: x < s["max_value"],
    "less_than_or_equal_to": lambda s: lambda x: x <= s["max_value"],
    "isin": lambda s: frozenset(s["allowed_values"]).__contains__,
    "str_length": lambda s: lambda x: _length_ok(len(x), s),
}
"""pandera's built-in checks the contracts use, as predicates on one non-missing value."""


def _length_ok(length: int, stats: dict) -> bool:
    if stats.get("exact_value") is not None:
        return length == stats["exact_value"]
    low, high = stats.get("min_value"), stats.get("max_value")
    return (low or 0) <= length and (high is None or length <= high)


def _text(value: object) -> object:
    """A failing cell as the failure table shows it (pandas' ``astype("string")``)."""
    return pd.NA if _missing(value) else str(value)


def _missing(value: object) -> bool:
    """``pd.isna`` for one cell, without its fixed cost on the common types."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return value != value
    if isinstance(value, str | bool | int):
        return False
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


# --- reading one cell: a value, _BLANK, _UNREADABLE, or _NotPlain for pandas' column parser ---

_BLANK = object()
_UNREADABLE = object()


class _NotPlain(Exception):
    """A cell the cell readers leave to ``_parse`` (a datetime, bytes, "1_000"...); its whole
    column is then parsed by pandas, so both paths read every value alike."""


def _read_str(cell: object) -> object:
    if isinstance(cell, str):
        return cell.strip() or _BLANK
    if _missing(cell):
        return _BLANK
    if isinstance(cell, _SCALARS):
        return str(cell).strip()
    raise _NotPlain


def _read_date(cell: object) -> object:
    """A plain ISO text as a day (a time of day is dropped); dates outside 1900-2200 are
    unreadable."""
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return _BLANK
        if _PLAIN_DATE.fullmatch(text):
            try:
                day = np.datetime64(text).astype("datetime64[D]")
            except ValueError:  # 2026-02-30, 25:00: unreadable, as in pandas
                return _UNREADABLE
            return day if _FIRST_DAY <= day <= _LAST_DAY else _UNREADABLE
    elif _missing(cell):
        return _BLANK
    raise _NotPlain


def _read_bool(cell: object) -> object:
    if cell is True or cell is np.True_:
        return True
    if (isinstance(cell, str) and not cell.strip()) or _missing(cell):
        return _BLANK
    if not isinstance(cell, _SCALARS):
        raise _NotPlain
    text = str(cell).strip().lower()
    return True if text in TRUE_WORDS else False if text in FALSE_WORDS else _UNREADABLE


def _read_number(cell: object, whole: bool) -> object:
    """A number; a whole one for an int column, within int64 (a count of 1e19 is unreadable,
    never wrapped around to a negative number)."""
    if isinstance(cell, str):
        text = cell.strip()
        if not text:
            return _BLANK
        if not _PLAIN_NUMBER.fullmatch(text):
            raise _NotPlain
        value = float(text)
    elif isinstance(cell, bool | np.bool_):
        raise _NotPlain
    elif _missing(cell):
        return _BLANK
    elif isinstance(cell, int | float | np.integer | np.floating):
        value = float(cell)
    else:
        raise _NotPlain
    if not math.isfinite(value) or (whole and not _whole_int64(value)):
        return _UNREADABLE
    return value


def _whole_int64(value: float) -> bool:
    return value.is_integer() and -INT64_LIMIT <= value < INT64_LIMIT


_READERS: dict[str, Callable[[object], object]] = {
    "str": _read_str,
    "date": _read_date,
    "bool": _read_bool,
    "float": lambda cell: _read_number(cell, whole=False),
    "int": lambda cell: _read_number(cell, whole=True),
}


@dataclass(frozen=True)
class _CompiledColumn:
    name: str
    kind: str
    nullable: bool
    unique: bool
    dtype: object  # what pandera coerces the column to
    checks: tuple[tuple[str, Callable[[object], bool]], ...]  # (pandera's text, test)

    def read(self, frame: pd.DataFrame, cells: np.ndarray) -> tuple[list, list[int], list[int]]:
        """The column's values (``None`` where missing), its blank cells and unreadable cells.

        Plain Python values (text, numbers, booleans: what a JSON request or a CSV holds) are
        read cell by cell; a column with any other value goes through ``_parse`` whole.
        """
        read = _READERS[self.kind]
        try:
            values = [read(cell) for cell in cells]
        except _NotPlain:
            return self._read_whole(frame[self.name])
        if not any(value is _BLANK or value is _UNREADABLE for value in values):
            return values, [], []
        blank = [i for i, value in enumerate(values) if value is _BLANK]
        unreadable = [i for i, value in enumerate(values) if value is _UNREADABLE]
        for i in blank + unreadable:  # blank text stays text, as pandas' ``str.strip`` has it
            text = self.kind == "str" and isinstance(cells[i], str)
            values[i] = cells[i].strip() if text else None
        return values, blank, unreadable

    def _read_whole(self, raw: pd.Series) -> tuple[list, list[int], list[int]]:
        parsed = parse_column(raw, self.kind)
        blank = blank_cells(raw)
        missing = parsed.isna().to_numpy()
        values = [None if gone else value for value, gone in zip(parsed, missing, strict=True)]
        unreadable = missing & ~blank
        return values, np.flatnonzero(blank).tolist(), np.flatnonzero(unreadable).tolist()

    def checked(self, values: list) -> list:
        """Readable values as pandera checks them (whole numbers as integers)."""
        if self.kind == "int" and not self.nullable:
            return [int(v) for v in values]
        return values

    def array(self, values: list) -> np.ndarray:
        """Checked values as the cross-column rules read them: NumPy, missing as NaN or NaT
        (text and nullable booleans as objects, missing as ``None``)."""
        if self.kind in ("float", "int", "date") or (self.kind == "bool" and not self.nullable):
            return np.array(values, dtype=self.dtype)
        return np.array(values, dtype=object)

    def typed(self, array: np.ndarray) -> object:
        """Valid values as pandera's coercion leaves them: the valid frame's column."""
        if isinstance(self.dtype, np.dtype):
            return array.astype(self.dtype, copy=False)
        if isinstance(self.dtype, pd.BooleanDtype):
            missing = np.equal(array, None)
            return pd.arrays.BooleanArray(np.equal(array, True), missing)
        if isinstance(self.dtype, pd.StringDtype):
            return self.dtype.construct_array_type()._from_sequence(array, dtype=self.dtype)
        return pd.array(array, self.dtype)


class CompiledContract:
    """A pandera schema's checks compiled once into cell readers and predicates.

    ``supported`` is false when the schema uses a check this does not know; ``validate`` then
    uses pandera whatever the frame's size.
    """

    def __init__(self, schema: pa.DataFrameSchema) -> None:
        kinds = column_kinds(schema)
        self.columns: list[_CompiledColumn] = []
        self.supported = True
        for name, column in schema.columns.items():
            checks = []
            for check in column.checks:
                make = _SCALAR_CHECKS.get(check.name)
                if make is None:
                    self.supported = False
                    continue
                checks.append((check.error, make(check.statistics or {})))
            dtype = column.dtype.type if column.dtype is not None else None
            self.columns.append(
                _CompiledColumn(
                    name, kinds[name], column.nullable, column.unique, dtype, tuple(checks)
                )
            )
        self.by_name = {c.name: c for c in self.columns}
        self.rules = [ROW_RULES.get(check.name) for check in schema.checks]
        if None in self.rules or not schema.coerce or schema.parsers:
            self.supported = False

    def validate(self, frame: pd.DataFrame, index: pd.Index) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Typed valid rows and every failure of a (small) frame, as ``validate`` reports them.

        ``frame`` has every required column; ``index`` holds its rows' numbers. Values stay
        Python lists until the valid rows are known: NumPy's fixed cost per call is more than a
        request's whole column.
        """
        rows = index.tolist()
        # one conversion, columns read by position; a lone row's cells come cheaper by iloc
        cells = frame.iloc[0].to_numpy()[None, :] if len(frame) == 1 else frame.to_numpy(object)
        position = {name: j for j, name in enumerate(frame.columns.tolist())}
        parsed: dict[str, list] = {}
        cell_failures = []
        for column in self.columns:
            if column.name not in position:
                continue
            column_cells = cells[:, position[column.name]]
            values, blank, unreadable = column.read(frame, column_cells)
            cell_failures += [
                (rows[i], column.name, f"parse as {column.kind}", _text(column_cells[i]))
                for i in unreadable
            ]
            if not column.nullable:
                cell_failures += [
                    (rows[i], column.name, "not_nullable", _text(column_cells[i])) for i in blank
                ]
            parsed[column.name] = values
        bad = {failure[0] for failure in cell_failures}
        readable = [i for i, row in enumerate(rows) if row not in bad]
        checked = {
            name: self.by_name[name].checked([values[i] for i in readable])
            for name, values in parsed.items()
        }
        failures = self._column_checks(checked, [rows[i] for i in readable])
        arrays = {name: self.by_name[name].array(values) for name, values in checked.items()}
        failures += self._row_rules(arrays, np.array([rows[i] for i in readable], dtype=np.int64))
        if bad:  # rows with unreadable cells still get every column check (values as parsed);
            # cross-column checks need all their inputs, so those wait until the row reads
            unread = [i for i, row in enumerate(rows) if row in bad]
            failures += self._column_checks(
                {name: [values[i] for i in unread] for name, values in parsed.items()},
                [rows[i] for i in unread],
            )
        rejected = {failure[0] for failure in failures}
        kept = np.array([rows[i] not in rejected for i in readable], dtype=bool)
        keep = np.asarray(readable, dtype=np.intp)[kept]
        if not kept.all():
            arrays = {name: array[kept] for name, array in arrays.items()}
        extra = frame.iloc[keep] if len(arrays) < len(position) else None
        data = [  # the user's other columns as they came
            self.by_name[name].typed(arrays[name]) if name in arrays else _column(extra[name])
            for name in position
        ]
        if len(keep) < len(rows):
            index = index[keep]
        return _frame(data, index, frame.columns), _failure_table(cell_failures + failures)

    def _column_checks(self, columns: dict[str, list], rows: list) -> list[tuple]:
        """(row, column, check, value) for every failed column check."""
        failures: list[tuple] = []
        for name, values in columns.items():
            column = self.by_name[name]
            if not (column.checks or column.unique):
                continue
            present = [(row, v) for row, v in zip(rows, values, strict=True) if v is not None]
            if column.unique:
                counts = Counter(value for _, value in present)
                failures += [
                    (row, name, "field_uniqueness", _value(value))
                    for row, value in present
                    if counts[value] > 1
                ]
            failures += [
                (row, name, text, _value(value))
                for text, test in column.checks
                for row, value in present
                if not test(value)
            ]
        return failures

    def _row_rules(self, columns: dict[str, np.ndarray], rows: np.ndarray) -> list[tuple]:
        """(row, column, check, value) for every failed cross-column rule."""
        failures: list[tuple] = []
        if not len(rows):
            return failures
        for rule in self.rules:
            if not rule.columns <= columns.keys():
                continue
            failed = ~np.asarray(rule.test(None, columns), dtype=bool)
            if failed.any():
                failures += [
                    (row, rule.primary, rule.description, _value(value))
                    for row, value in zip(
                        rows[failed].tolist(), columns[rule.primary][failed], strict=True
                    )
                ]
        return failures


def _column(series: pd.Series) -> object:
    """A column's values as a block holds them: NumPy, or pandas' own array."""
    return series.to_numpy() if isinstance(series.dtype, np.dtype) else series.array


def _frame(columns: list[object], index: pd.Index, names: pd.Index) -> pd.DataFrame:
    """The valid rows as a frame built from its blocks: one 2-D block per NumPy dtype and one
    per pandas array. ``pd.DataFrame`` makes and checks a block per column, about 0.3 ms for a
    request's 29 columns; this is a third of that, the same frame (a property test compares).
    ``columns`` are the columns' values in the order of ``names``."""
    groups: dict[tuple, list[int]] = {}
    for j, values in enumerate(columns):
        key = ("numpy", values.dtype.str) if isinstance(values, np.ndarray) else ("pandas", j)
        groups.setdefault(key, []).append(j)
    blocks = [
        (
            np.stack([columns[j] for j in positions]) if kind == "numpy" else columns[positions[0]],
            np.asarray(positions, dtype=np.intp),
        )
        for (kind, _), positions in groups.items()
    ]
    return create_dataframe_from_blocks(blocks, index=index, columns=names)


def _failure_table(found: list[tuple]) -> pd.DataFrame:
    """(row, column, check, value) tuples as ``validate``'s failure table."""
    if not found:
        return concat_failures([])
    row, column, check, value = zip(*found, strict=True)
    return pd.DataFrame(
        {
            "row": np.asarray(row, dtype=np.int64),
            "column": pd.Series(column, dtype=object),
            "check": pd.Series(check, dtype=object),
            "value": pd.Series(value, dtype=object),
        }
    )


def _value(value: object) -> object:
    """A checked value as pandera's failure cases hold it."""
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)
    return value


_COMPILED: dict[int, tuple[weakref.ref, CompiledContract]] = {}


def compiled(schema: pa.DataFrameSchema) -> CompiledContract:
    """The schema's ``CompiledContract``, built once per schema object (and dropped with it;
    pandera's schemas are unhashable, hence the id)."""
    entry = _COMPILED.get(id(schema))
    if entry is not None and entry[0]() is schema:
        return entry[1]
    contract = CompiledContract(schema)
    _COMPILED[id(schema)] = (weakref.ref(schema), contract)
    weakref.finalize(schema, _COMPILED.pop, id(schema), None)
    return contract
