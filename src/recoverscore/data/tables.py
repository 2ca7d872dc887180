"""Reading and writing portfolio files (CSV, Parquet, a folder of Parquet files).

This is an edge module: the only place besides the CLI that touches the file system. Reading
never guesses types (CSV cells arrive as text and the schemas parse them, cell by cell), and
writing is atomic: a file is written under a temporary name and renamed only when complete, so an
interrupted job never leaves a truncated file that looks finished.

Jobs that write files also check, before any work, that no output is an input, another output,
or inside an input folder (``check_paths``), and hold an exclusive lock on every output for as
long as they run (``locked``), so two runs never write into each other's files.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recoverscore.errors import RecoverscoreError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Spreadsheets run a cell that starts with one of these as a formula (OWASP: CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"


def table_format(path: str | Path) -> str:
    """``csv`` or ``parquet`` from the extension (a folder holds Parquet parts)."""
    path = Path(path)
    if path.is_dir():
        return "parquet"
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RecoverscoreError(
            f"unsupported file type {path.suffix or '(none)'!r} for {path}: use .csv or .parquet"
        )
    return fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a whole table; any failure to read is a one-line ``RecoverscoreError``."""
    path = Path(path)
    if not path.exists():
        raise RecoverscoreError(f"file not found: {path}")
    fmt = table_format(path)
    try:
        if fmt == "csv":
            return pd.read_csv(
                path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8"
            )
        return pd.read_parquet(path)
    except UnicodeDecodeError as error:
        raise RecoverscoreError(
            f"{path} is not UTF-8 text (byte {error.start}): re-save it as UTF-8 CSV"
        ) from None
    except pd.errors.EmptyDataError:
        raise RecoverscoreError(f"{path} is empty: expected a header row and data") from None
    except pd.errors.ParserError as error:
        first = str(error).strip().splitlines()[0]
        raise RecoverscoreError(f"{path} is not a well-formed CSV file: {first}") from None
    except (pa.ArrowException, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RecoverscoreError(f"cannot read {path} as {fmt}: {first}") from None


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_error(path: Path, error: OSError) -> RecoverscoreError:
    """A failed write (no permission, disk full, read-only) as one line naming the path."""
    reason = error.strerror or type(error).__name__
    return RecoverscoreError(f"cannot write {error.filename or path}: {reason.lower()}")


def write_text(text: str, path: str | Path) -> Path:
    """Write a UTF-8 text file atomically: readers see the old file or the whole new one."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as error:
        raise write_error(path, error) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(data: object, path: str | Path) -> Path:
    """Write JSON atomically (for metrics and reports that scripts read)."""
    return write_text(json.dumps(data, indent=2, sort_keys=True), path)


def write_table(frame: pd.DataFrame, path: str | Path, schema: pa.Schema | None = None) -> Path:
    """Write one frame atomically."""
    return write_chunks([frame], path, schema=schema)


def write_chunks(
    chunks: Iterable[pd.DataFrame],
    path: str | Path,
    on_chunk: Callable[[int], None] | None = None,
    schema: pa.Schema | None = None,
) -> Path:
    """Stream frames into one CSV or Parquet file, atomically; ``on_chunk(rows)`` per chunk.

    Dates are written as ISO dates in CSV; Parquet keeps every type, cast to ``schema`` when
    given (else to the first chunk's).
    """
    path = Path(path)
    fmt = table_format(path)
    if path.is_dir():
        raise RecoverscoreError(f"{path} is a folder: give a .csv or .parquet file to write")
    if not path.parent.exists():
        raise RecoverscoreError(f"folder does not exist: {path.parent}")
    tmp = _temporary(path)
    writer: pq.ParquetWriter | None = None
    try:
        for index, chunk in enumerate(chunks):
            if fmt == "parquet":
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, schema or table.schema)
                writer.write_table(table.cast(writer.schema))
            else:
                chunk.to_csv(
                    tmp,
                    mode="w" if index == 0 else "a",
                    header=index == 0,
                    index=False,
                    date_format="%Y-%m-%d",
                    encoding="utf-8",
                )
            if on_chunk is not None:
                on_chunk(len(chunk))
        if writer is not None:
            writer.close()
            writer = None
        os.replace(tmp, path)
    except BaseException as error:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise write_error(path, error) from None
        raise
    return path


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe.

    Plain numbers such as ``-5`` are left alone: they are values, not formulas. Every CSV a
    user may open (scored rows, rejects, validation failures) goes through this.
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_string_dtype(column) or column.dtype == object):
            continue
        text = column.astype("string")
        risky = text.str.startswith(_FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
        if risky.any():  # (a plain number such as -5 starts with a sign too)
            risky[risky] = ~text[risky].str.fullmatch(_NUMBER).fillna(False).to_numpy(dtype=bool)
            out[name] = text.where(~risky, "'" + text)
    return out


def csv_safe(frames: Iterable[pd.DataFrame], path: Path) -> Iterable[pd.DataFrame]:
    """``frames`` with formulas neutralised when ``path`` is a CSV file."""
    return (neutralise_formulas(f) for f in frames) if table_format(path) == "csv" else frames


# --- path rules and output locks --------------------------------------------------------------


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _same(a: Path, b: Path) -> bool:
    if _real(a) == _real(b):
        return True
    try:  # hard links, or one path through a mount
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(inputs: dict[str, Path], outputs: dict[str, Path]) -> None:
    """Refuse, in one line, an output that is an input, another output, or inside an input
    folder; ``inputs`` and ``outputs`` map what each path is (for the message) to the path."""
    for what, path in outputs.items():
        for source, read in inputs.items():
            if _same(path, read):
                raise RecoverscoreError(
                    f"the {what} {path} is the {source} {read}: give every output its own path"
                )
            if _real(read).is_dir() and _real(path).is_relative_to(_real(read)):
                raise RecoverscoreError(
                    f"the {what} {path} is inside the {source} folder {read}: write it elsewhere"
                )
    written = list(outputs.items())
    for i, (what, path) in enumerate(written):
        for other, second in written[i + 1 :]:
            if _same(path, second):
                raise RecoverscoreError(
                    f"the {what} {path} and the {other} {second} are the same file: give every "
                    "output its own path"
                )


def lock_path(path: Path) -> Path:
    """The lock file of an output: ``.<name>.lock`` beside it."""
    return path.with_name(f".{path.name}.lock")


def _holder(lock: Path) -> str:
    """Who holds a lock, as its lock file records it (written just after it is taken)."""
    for _ in range(20):
        try:
            owner = json.loads(lock.read_text(encoding="utf-8"))
            return f"pid {owner['pid']}, started {owner['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "pid unknown"


def _acquire(path: Path) -> int:
    """Open and lock ``path``'s lock file; refuse, naming the holder, if another run has it.

    ``flock`` locks die with their process, so a lock file left by a killed run is simply taken
    over. The file is removed on release; a run that opened it just before that removal sees
    that its file is no longer the one at the path, and tries again.
    """
    lock = lock_path(path)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise write_error(lock, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RecoverscoreError(
                f"{path} is being written by another recoverscore run ({_holder(lock)}): "
                "wait for it to finish, or stop it"
            ) from None
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "started": started}).encode())
    return fd


def _release(path: Path, fd: int) -> None:
    lock_path(path).unlink(missing_ok=True)  # while still held: no one can be mid-takeover
    os.close(fd)


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files a killed writer left for ``path`` (``.<name>.<pid>.tmp`` of a
    process that no longer runs); called under the output's lock."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name.removeprefix(f".{path.name}.").removesuffix(".tmp")
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


@contextmanager
def locked(paths: Iterable[Path]) -> Iterator[None]:
    """Hold an exclusive lock on every output in ``paths`` (see ``_acquire``) and clear the
    temporaries killed runs left for them; released when the block ends, however it ends."""
    with ExitStack() as stack:
        for path in sorted({_real(Path(p)) for p in paths}):
            fd = _acquire(path)
            stack.callback(_release, path, fd)
            remove_stale_temporaries(path)
        yield
