"""The fixed corpus of bad input files: ``tests/data/bad/`` and its ``manifest.json``.

Each case is one small file: the clean eight-row portfolio below with one defect (a cell, an id,
a record, the encoding, the header, the file itself), or a variant that must still pass. The
outcome both ``recoverscore validate`` and ``recoverscore score`` must give it (exit code, the
rows rejected, a fragment of the one-line error) is written here by hand, never computed by
recoverscore; ``tests/test_bad_inputs.py`` holds both commands to it. Rewrite the folder with
``python tests/make_bad_files.py`` from the repository root (the test checks that the committed
files are what this script writes).
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FOLDER = Path(__file__).resolve().parent / "data" / "bad"
BASE = """\
debtor_id,as_of,debtor_type,region,industry,principal,accrued_interest,due_date,\
last_payment_date,n_partial_payments,n_broken_promises,last_acknowledgment_date,contact_status,\
disputes_debt,n_prior_lawsuits,n_prior_judgments,on_dishonest_list,n_prior_enforcements,\
owns_real_estate,owns_vehicle,has_equity_holdings,monthly_income,annual_revenue,pays_tax,\
is_elderly,disaster_affected
C001,2026-06-30,individual,shanghai,construction,19705.34,0.0,2020-07-25,2022-06-21,4,0,\
2022-06-21,intermittent,False,0,0,False,0,True,False,True,27625.0,,,False,False
C002,2026-06-30,individual,henan,manufacturing,10984.66,0.0,2026-02-14,2026-06-30,1,0,\
2026-06-30,reachable,False,0,0,False,0,False,True,False,4974.0,,,True,False
C003,2026-06-30,enterprise,jiangsu,transport,43922.73,0.0,2024-07-16,,0,1,,lost,True,3,2,True,1,\
False,False,False,,67149.0,False,False,False
C004,2026-06-30,enterprise,zhejiang,wholesale_retail,118228.2,0.0,2026-06-22,,0,0,,reachable,\
True,0,0,False,0,True,True,False,,955258.0,False,False,False
C005,2026-06-30,individual,henan,construction,9982.79,0.0,2025-07-17,,0,1,,intermittent,False,0,\
0,False,0,False,True,False,4685.0,,,True,False
C006,2026-06-30,individual,jiangsu,manufacturing,5311.91,0.0,2025-08-25,,0,0,2026-06-15,\
reachable,False,0,0,False,0,False,False,True,5060.0,,,False,False
C007,2026-06-30,individual,guangdong,transport,9825.09,0.0,2025-06-16,,0,1,,reachable,False,0,0,\
False,0,False,False,False,3589.0,,,False,False
C008,2026-06-30,individual,sichuan,manufacturing,53093.39,0.0,2026-01-28,,0,0,,reachable,False,\
0,0,False,0,False,False,True,10976.0,,,False,False
"""
"""Eight valid debts (rows 1-8): individuals with and without payments, enterprises with
revenue and tax status, an acknowledgment, prior lawsuits and judgments."""

_DATES = ["as_of", "due_date", "last_payment_date", "last_acknowledgment_date"]
_MONEY = ["principal", "accrued_interest", "monthly_income", "annual_revenue"]
_COUNTS = ["n_partial_payments", "n_broken_promises", "n_prior_lawsuits", "n_prior_judgments",
           "n_prior_enforcements"]  # fmt: skip
_FLAGS = ["disputes_debt", "on_dishonest_list", "owns_real_estate", "owns_vehicle",
          "has_equity_holdings", "pays_tax", "is_elderly", "disaster_affected"]  # fmt: skip
KINDS = {
    **dict.fromkeys(_DATES, "date"),
    **dict.fromkeys(_MONEY, "float"),
    **dict.fromkeys(_COUNTS, "int"),
    **dict.fromkeys(_FLAGS, "bool"),
}
"""Arrow types for the Parquet cases (every other column is text)."""


def base() -> tuple[list[str], list[list[str]]]:
    """The header and the eight rows as text cells (a fresh copy to edit)."""
    header, *rows = csv.reader(io.StringIO(BASE))
    return header, rows


def to_csv(header: list[str], rows: list[list[str]], **options) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", **options)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@dataclass
class Case:
    """One bad file and the outcome both commands must give it."""

    name: str
    write: Callable[[Path], None] = field(repr=False)
    exit: int  # 0 valid, 1 some rows rejected, 2 an input error (validate and score alike)
    rejected: list[int] = field(default_factory=list)
    rows: int | None = None  # data records in the file (None: unreadable)
    message: str | None = None  # for exit 2: a fragment of the one-line error
    note: str = ""

    def entry(self) -> dict:
        return {
            "file": self.name,
            "validate": self.exit,
            "score": self.exit,
            "rejected": self.rejected,
            "rows": self.rows,
            "message": self.message,
            "note": self.note,
        }


def _text(text: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    return lambda path: path.write_bytes(text.encode(encoding))


def table(**replace: pa.Array) -> pa.Table:
    """The base as typed Arrow columns, with some columns replaced."""
    header, rows = base()
    columns = {}
    for i, name in enumerate(header):
        cells = [r[i] or None for r in rows]
        kind = KINDS.get(name, "str")
        if kind == "date":
            values = [None if c is None else datetime.datetime.fromisoformat(c) for c in cells]
            columns[name] = pa.array(values, pa.timestamp("ms"))
        elif kind == "float":
            columns[name] = pa.array([None if c is None else float(c) for c in cells])
        elif kind == "int":
            columns[name] = pa.array([int(c) for c in cells], pa.int64())
        elif kind == "bool":
            columns[name] = pa.array([None if c is None else c == "True" for c in cells])
        else:
            columns[name] = pa.array(cells, pa.string())
    columns.update(replace)
    return pa.table(columns)


def column(name: str, row: int, value: object, kind: pa.DataType | None = None) -> pa.Array:
    """A base column with one cell replaced; ``kind``: the column's new Arrow type (text keeps
    the CSV's cells)."""
    if kind == pa.string():
        header, rows = base()
        values = [r[header.index(name)] or None for r in rows]
    else:
        values = table()[name].to_pylist()
    values[row - 1] = value
    return pa.array(values, kind or table()[name].type)


def _parquet(data: pa.Table) -> Callable[[Path], None]:
    return lambda path: pq.write_table(data, path)


def folder(name: str, parts: list[pa.Table], rejected: list[int], note: str) -> Case:
    def write(path: Path) -> None:
        path.mkdir()
        for i, part in enumerate(parts):
            pq.write_table(part, path / f"part-{i}.parquet")

    return Case(name, write, 1 if rejected else 0, rejected, sum(p.num_rows for p in parts),
                None, note)  # fmt: skip


def _gbk(path: Path) -> None:
    header, rows = base()
    rows[3][header.index("region")] = "浙江"
    path.write_bytes(to_csv(header, rows).encode("gbk"))


def _gbk_offset() -> int:
    header, rows = base()
    rows[3][header.index("region")] = "浙江"
    text = to_csv(header, rows)
    return len(text[: text.index("浙")].encode("gbk"))


def _latin1(path: Path) -> None:
    header, rows = base()
    rows[6][header.index("region")] = "Zürich"
    path.write_bytes(to_csv(header, rows).encode("latin-1"))


def _garbage(path: Path) -> None:
    noise = random.Random(13)
    path.write_bytes(bytes([0xC3, 0x28]) + bytes(noise.randrange(256) for _ in range(600)))


def _no_parquet(path: Path) -> None:
    path.mkdir()
    (path / "notes.txt").write_text("the parts were never exported\n", encoding="utf-8")


def _truncated_parquet(path: Path) -> None:
    buffer = pa.BufferOutputStream()
    pq.write_table(table(), buffer)
    data = buffer.getvalue().to_pybytes()
    path.write_bytes(data[: len(data) // 2])


CELLS = [  # name, row, column, value, still valid?, why
    # money beyond what the arithmetic holds, or not money at all
    ("principal_negative", 4, "principal", "-100", False, "principal must be > 0"),
    ("principal_zero", 4, "principal", "0", False, "principal must be > 0"),
    ("principal_text", 4, "principal", "abc", False, "not a number"),
    ("principal_2e19", 4, "principal", "2e19", False, "beyond int64: once crashed score (D3)"),
    ("principal_1e300", 4, "principal", "1e300", False, "far beyond any claim"),
    ("principal_inf", 4, "principal", "inf", False, "not finite"),
    ("principal_nan", 4, "principal", "NaN", False, "NaN text is not a number"),
    ("principal_blank", 4, "principal", "", False, "required"),
    ("principal_thousands", 4, "principal", "1,000", False, "a thousands separator"),
    ("principal_hex", 4, "principal", "0x10", False, "hexadecimal"),
    ("principal_above_cap", 4, "principal", "1000000000000.01", False, "above 1e12 CNY"),
    ("principal_at_cap", 4, "principal", "1000000000000", True, "exactly 1e12: allowed"),
    ("principal_spaces", 5, "principal", " 9982.79 ", True, "spaces around a number"),
    ("principal_exponent", 5, "principal", "1e4", True, "an exponent"),
    ("interest_negative", 7, "accrued_interest", "-1", False, "interest must be >= 0"),
    ("interest_1e300", 7, "accrued_interest", "1e300", False, "once crashed score (D3)"),
    ("interest_text", 7, "accrued_interest", "ten", False, "not a number"),
    ("interest_at_cap", 7, "accrued_interest", "1e12", True, "exactly 1e12: allowed"),
    ("income_negative", 5, "monthly_income", "-5", False, "income must be >= 0"),
    ("income_1e300", 5, "monthly_income", "1e300", False, "above 1e12 CNY"),
    ("income_enterprise", 4, "monthly_income", "5000", False, "income only for individuals"),
    ("revenue_individual", 5, "annual_revenue", "100000", False, "revenue: enterprises only"),
    ("revenue_above_cap", 4, "annual_revenue", "1e15", False, "above 1e14 CNY"),
    # counts
    ("payments_fraction", 2, "n_partial_payments", "2.5", False, "a count is whole"),
    ("payments_negative", 2, "n_partial_payments", "-1", False, "a count is >= 0"),
    ("payments_above_cap", 2, "n_partial_payments", "5e6", False, "above 1,000,000"),
    ("payments_without_date", 8, "n_partial_payments", "3", False, "payments need a date"),
    ("promises_1e19", 3, "n_broken_promises", "1e19", False, "beyond int64"),
    ("promises_blank", 3, "n_broken_promises", "", False, "required"),
    ("promises_word", 3, "n_broken_promises", "one", False, "not a number"),
    ("judgments_above_lawsuits", 3, "n_prior_judgments", "9", False, "judgments need lawsuits"),
    ("lawsuits_negative", 3, "n_prior_lawsuits", "-3", False, "a count is >= 0"),
    ("enforcements_huge", 3, "n_prior_enforcements", "2147483648000", False, "above the cap"),
    # dates
    ("due_day_first", 5, "due_date", "31/12/2025", False, "not ISO"),
    ("due_month_13", 5, "due_date", "2025-13-01", False, "no such month"),
    ("due_february_30", 5, "due_date", "2025-02-30", False, "no such day"),
    ("due_word", 5, "due_date", "yesterday", False, "not a date"),
    ("due_1899", 5, "due_date", "1899-12-31", False, "before 1900"),
    ("due_2201", 5, "due_date", "2201-01-01", False, "after 2200"),
    ("due_blank", 5, "due_date", "", False, "required"),
    ("due_after_as_of", 5, "due_date", "2026-07-01", False, "due after the decision date"),
    ("due_offset", 5, "due_date", "2025-07-17T00:00:00+08:00", True, "D4: the date written"),
    ("due_utc", 5, "due_date", "2025-07-17T10:30:00Z", True, "D4: the date written"),
    ("due_with_time", 5, "due_date", "2025-07-17 00:00:00", True, "a time of day"),
    ("as_of_day_first", 6, "as_of", "30/06/2026", False, "not ISO"),
    ("as_of_blank", 6, "as_of", "", False, "required in a file that has the column"),
    ("as_of_before_ack", 6, "as_of", "2026-06-14", False, "acknowledged after as_of"),
    ("payment_after_as_of", 2, "last_payment_date", "2026-07-01", False, "after as_of"),
    ("payment_word", 2, "last_payment_date", "someday", False, "not a date"),
    ("payment_without_count", 7, "last_payment_date", "2025-07-01", False, "count is 0"),
    ("ack_before_payment", 1, "last_acknowledgment_date", "2021-01-01", False, "a payment"),
    # categories, flags and text
    ("contact_unknown", 8, "contact_status", "vanished", False, "not a status"),
    ("contact_upper", 8, "contact_status", "REACHABLE", False, "statuses are lower case"),
    ("contact_blank", 8, "contact_status", "", False, "required"),
    ("type_unknown", 8, "debtor_type", "person", False, "not a debtor type"),
    ("type_enterprise_with_income", 8, "debtor_type", "enterprise", False, "income rule"),
    ("dispute_maybe", 1, "disputes_debt", "maybe", False, "not a flag"),
    ("dispute_two", 1, "disputes_debt", "2", False, "not a flag"),
    ("dispute_blank", 1, "disputes_debt", "", False, "required"),
    ("dishonest_phrase", 1, "on_dishonest_list", "yes please", False, "not a flag"),
    ("real_estate_minus_one", 1, "owns_real_estate", "-1", False, "not a flag"),
    ("disaster_na", 8, "disaster_affected", "n/a", False, "not a flag"),
    ("tax_perhaps", 4, "pays_tax", "perhaps", False, "not a flag"),
    ("tax_individual", 6, "pays_tax", "True", False, "tax status only for enterprises"),
    ("elderly_enterprise", 4, "is_elderly", "True", False, "elderly only for individuals"),
    ("flags_as_digits", 1, "disputes_debt", "0", True, "0 and 1 are flags"),
    ("flags_as_words", 1, "owns_real_estate", "yes", True, "yes and no are flags"),
    ("flags_upper", 1, "owns_vehicle", "TRUE", True, "case does not matter"),
    ("region_blank", 6, "region", "", False, "required"),
    ("region_spaces", 6, "region", "   ", False, "only spaces"),
    ("region_chinese", 4, "region", "浙江", True, "UTF-8 text"),
    ("region_comma_newline", 4, "region", "zhe,jiang\nnorth", True, "quoted"),
    ("industry_blank", 6, "industry", "", False, "required"),
    ("id_blank", 6, "debtor_id", "", False, "required"),
    ("id_spaces", 6, "debtor_id", "   ", False, "only spaces"),
    ("id_formula", 2, "debtor_id", '=HYPERLINK("http://x")', True, "valid; neutralised"),
]
"""One cell of one row set to a value: that row rejected (or still valid)."""

EDITS = [  # name, edit of (header, rows), rejected rows, why
    ("id_twice", lambda h, r: r[6].__setitem__(0, "C003"), [3, 7], "every copy rejected"),
    ("id_spaced_twice", lambda h, r: r[6].__setitem__(0, " C003 "), [3, 7], "D6: spaces"),
    ("id_three_times", lambda h, r: [r[i].__setitem__(0, "C001") for i in (1, 4, 7)],
     [1, 2, 5, 8], "every copy rejected"),
    ("id_other_case", lambda h, r: r[6].__setitem__(0, "c003"), [], "ids are case-sensitive"),
    ("extra_column", lambda h, r: [h.append("note"), *(x.append("ok") for x in r)], [],
     "own columns pass through"),
    ("columns_reversed", lambda h, r: [h.reverse(), *(x.reverse() for x in r)], [],
     "order does not matter"),
    ("trailing_comma", lambda h, r: [h.append(""), *(x.append("") for x in r)], [],
     "an unnamed empty column"),
]  # fmt: skip
"""The base's header and rows edited; the rows that must be rejected."""

RECORDS = [  # name, edit of the CSV's lines (0: the header), rejected rows, records, why
    ("record_extra_field", lambda ls: ls.__setitem__(3, ls[3] + ",x"), [3], 8, "27 fields"),
    ("record_missing_fields", lambda ls: ls.__setitem__(5, ls[5].rsplit(",", 3)[0]), [5], 8,
     "23 fields"),
    ("record_unterminated_quote", lambda ls: ls.__setitem__(6, ls[6].replace(",", ',"', 1)),
     [6], 6, "the quote runs to the end of the file: one record"),
    ("record_truncated_last", lambda ls: ls.__setitem__(8, ls[8][:40]), [8], 8, "cut off"),
    ("record_lone_comma", lambda ls: ls.insert(4, ","), [4], 9, "two empty fields"),
    ("record_two_broken", lambda ls: [ls.__setitem__(1, ls[1] + ",x"), ls.__setitem__(8, "C8")],
     [1, 8], 8, "two records"),
    ("blank_lines", lambda ls: [ls.insert(2, ""), ls.insert(2, ""), ls.append("")], [], 8,
     "empty lines are no records"),
]  # fmt: skip
"""CSV lines broken so the parser cannot split a record into the header's fields."""


def _parquet_cases() -> list[Case]:
    tz = "Asia/Shanghai"
    specs = [  # name, the base with these columns replaced, rejected rows, why
        ("typed.parquet", {}, [], "the clean base, typed"),
        ("principal_string.parquet", {"principal": column("principal", 4, "abc", pa.string())},
         [4], "text in a number column"),
        ("principal_inf.parquet", {"principal": column("principal", 4, float("inf"))}, [4],
         "not finite"),
        ("principal_nan.parquet", {"principal": column("principal", 4, float("nan"))}, [4],
         "NaN is missing"),
        ("principal_2e19.parquet", {"principal": column("principal", 4, 2e19)}, [4], "D3"),
        ("principal_decimal.parquet", {"principal": pa.array(
            [decimal.Decimal(r[5]) for r in base()[1]], pa.decimal128(12, 2))}, [],
         "decimals are numbers"),
        ("payments_float.parquet", {"n_partial_payments": column(
            "n_partial_payments", 2, 2.5, pa.float64())}, [2], "a fraction"),
        ("enforcements_int64_max.parquet", {"n_prior_enforcements": column(
            "n_prior_enforcements", 3, 2**63 - 1)}, [3], "int64's largest"),
        ("due_text.parquet", {"due_date": column("due_date", 5, "31/12/2025", pa.string())},
         [5], "text dates"),
        ("due_zoned.parquet", {"due_date": _zoned("due_date", tz)}, [], "D4: zone-aware"),
        ("due_2300.parquet", {"due_date": column("due_date", 5, datetime.datetime(2300, 1, 1))},
         [5], "after 2200"),
        ("dispute_int.parquet", {"disputes_debt": pa.array([0, 0, 1, 1, 0, 0, 0, 0])}, [],
         "0 and 1 are flags"),
        ("dispute_text.parquet", {"disputes_debt": column(
            "disputes_debt", 1, "maybe", pa.string())}, [1], "not a flag"),
        ("type_null.parquet", {"debtor_type": column("debtor_type", 8, None)}, [8], "required"),
        ("id_int.parquet", {"debtor_id": pa.array(range(101, 109), pa.int64())}, [],
         "numbers as ids"),
        ("region_bad_bytes.parquet", {"region": _binary_region()}, [6], "not UTF-8 bytes"),
    ]  # fmt: skip
    out = [
        Case(name, _parquet(table(**columns)), 1 if rejected else 0, rejected, 8, None, why)
        for name, columns, rejected, why in specs
    ]
    second_bad = table(principal=column("principal", 6, -1.0)).slice(4, 4)
    second_same = table(debtor_id=column("debtor_id", 5, "C001")).slice(4, 4)
    out.append(folder("two_parts", [table().slice(0, 4), second_bad], [6], "rows run on"))
    out.append(folder("two_parts_same_id", [table().slice(0, 4), second_same], [1, 5], "D6"))
    return out


def _fatal_cases() -> list[Case]:
    header = BASE.splitlines()[0]
    specs = [  # name, writer, a fragment of the one-line error (validate and score), why
        ("empty.csv", _text(""), "is empty", "zero bytes"),
        ("bom_only.csv", _text("", "utf-8-sig"), "is empty", "a byte-order mark only"),
        ("header_only.csv", _text(header + "\n"), "no data rows", "D14"),
        ("header_blank_lines.csv", _text(header + "\n\n\n"), "no data rows", "no records"),
        ("header_twice.csv", _text(_twice()), "2 columns named 'principal'", "D5"),
        ("no_principal.csv", _text(_without("principal")), "['principal']", "required"),
        ("semicolons.csv", _text(BASE.replace(",", ";")), "lacks required column", "one column"),
        ("gbk.csv", _gbk, f"not UTF-8 text (byte {_gbk_offset():,}, line 5)", "D14"),
        ("latin1.csv", _latin1, "not UTF-8 text", "Latin-1"),
        ("utf16.csv", _text(BASE, "utf-16"), "not UTF-8 text (byte 0, line 1)", "UTF-16"),
        ("garbage.csv", _garbage, "not UTF-8 text (byte 0, line 1)", "random bytes"),
        ("not_parquet.parquet", _text(BASE), "cannot read", "CSV named .parquet"),
        ("truncated.parquet", _truncated_parquet, "cannot read", "cut in half"),
        ("zero_rows.parquet", _parquet(table().slice(0, 0)), "no data rows", "D14"),
        ("names_twice.parquet", _parquet(_parquet_twice()), "2 columns named 'principal'", "D5"),
        ("no_parquet_folder", _no_parquet, "no .parquet files", "D14: an empty folder"),
        ("spreadsheet.xlsx", _text("PK"), "unsupported file type", "not CSV or Parquet"),
    ]
    return [Case(name, write, 2, [], None, message, why) for name, write, message, why in specs]


def cases() -> list[Case]:
    """Every case, in the order the manifest lists them."""
    out = []
    for name, row, column_name, value, ok, why in CELLS:
        header, rows = base()
        rows[row - 1][header.index(column_name)] = value
        write = _text(to_csv(header, rows))
        out.append(Case(f"{name}.csv", write, 0 if ok else 1, [] if ok else [row], 8, None, why))
    for name, edit, rejected, why in EDITS:
        header, rows = base()
        edit(header, rows)
        write = _text(to_csv(header, rows))
        out.append(Case(f"{name}.csv", write, 1 if rejected else 0, rejected, 8, None, why))
    for name, edit, rejected, records, why in RECORDS:
        lines = BASE.splitlines()
        edit(lines)
        write = _text("\n".join(lines) + "\n")
        out.append(Case(f"{name}.csv", write, 1 if rejected else 0, rejected, records, None, why))
    out += [
        Case("crlf.csv", _text(BASE.replace("\n", "\r\n")), 0, [], 8, None, "Windows lines"),
        Case("bom.csv", _text(BASE, "utf-8-sig"), 0, [], 8, None, "Excel's CSV UTF-8"),
        Case("quoted.csv", _text(to_csv(*base(), quoting=csv.QUOTE_ALL)), 0, [], 8, None,
             "every field quoted"),
        Case("no_interest_column.csv", _text(_without("accrued_interest")), 0, [], 8, None,
             "an optional column"),
    ]  # fmt: skip
    out += _parquet_cases() + _fatal_cases()
    names = [c.name for c in out]
    assert len(names) == len(set(names)), "case names must be unique"
    return out


def _drop(name: str) -> Callable:
    def edit(header: list[str], rows: list[list[str]]) -> None:
        at = header.index(name)
        del header[at]
        for row in rows:
            del row[at]

    return edit


def _without(name: str) -> str:
    header, rows = base()
    _drop(name)(header, rows)
    return to_csv(header, rows)


def _twice() -> str:
    header, rows = base()
    at = header.index("principal")
    return to_csv([*header, "principal"], [[*r, r[at]] for r in rows])


def _parquet_twice() -> pa.Table:
    data = table()
    return pa.Table.from_arrays([*data.columns, data["principal"]], [*data.column_names,
                                "principal"])  # fmt: skip


def _zoned(name: str, zone: str) -> pa.Array:
    """A date column as midnight in ``zone`` (time-zone-aware timestamps)."""
    import pyarrow.compute as pc

    return pc.assume_timezone(table()[name], zone).combine_chunks()


def _binary_region() -> pa.Array:
    header, rows = base()
    values = [r[header.index("region")].encode() for r in rows]
    values[5] = b"\xff\xfejiangsu"
    return pa.array(values, pa.binary())


def write_all(target: Path) -> list[dict]:
    """Write every case into ``target`` (emptied first) with ``manifest.json``; returns it."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    manifest = []
    for case in cases():
        case.write(target / case.name)
        manifest.append(case.entry())
    lines = ",\n".join(json.dumps(entry, ensure_ascii=False) for entry in manifest)
    (target / "manifest.json").write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    return manifest


if __name__ == "__main__":
    written = write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER)
    print(f"wrote {len(written)} cases")
