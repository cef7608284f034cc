"""Fast readers for the whitespace-separated numeric text files that HAR datasets ship (plain or .gz)."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
import pandas as pd

from har.errors import BadInput

_reads: ContextVar[list[Path] | None] = ContextVar("har_reads", default=None)


@contextmanager
def recording_reads() -> Iterator[list[Path]]:
    """Collect every file the readers read inside the block (prepare checks each against the pins)."""
    files: list[Path] = []
    token = _reads.set(files)
    try:
        yield files
    finally:
        _reads.reset(token)


def note_read(path: Path) -> None:
    """Record a file a reader reads; readers that open files themselves (not via read_bytes) call it."""
    files = _reads.get()
    if files is not None:
        files.append(Path(path))


def find_file(root: Path, relpath: str) -> Path:
    """``root/relpath`` or its ``.gz`` twin; BadInput naming what is missing."""
    for candidate in (root / relpath, root / f"{relpath}.gz"):
        if candidate.is_file():
            return candidate
    raise BadInput(f"{root / relpath}: missing (also looked for .gz); run 'har data fetch' or fix the mirror")


def read_bytes(path: Path) -> bytes:
    """File content, gunzipped when the name ends in .gz."""
    note_read(path)
    if path.suffix == ".gz":
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"{path}: cannot read ({reason(exc)})") from exc
        try:
            return gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadInput(f"{path}: truncated or corrupt gzip file ({reason(exc)}); fetch it again") from exc
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({reason(exc)})") from exc


def reason(exc: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message, shortened to ``limit`` characters, for a one-line error."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = text.strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r\f\v"


def read_matrix(
    path: Path, ncols: int | None = None, dtype: type = np.float64, allow_nan: bool = False
) -> np.ndarray:
    """Parse a numeric text table; BadInput naming the file if it has not ``ncols`` columns."""
    raw = read_bytes(path)
    if not raw.strip():
        raise BadInput(f"{path}: empty file; fetch it again")
    try:
        # single-space separated files parse fastest with sep=" "; others need the whitespace regex
        table = pd.read_csv(io.BytesIO(raw), sep=" ", header=None, engine="c", dtype=dtype)
        if (not allow_nan and table.isna().any().any()) or (ncols is not None and table.shape[1] != ncols):
            table = pd.read_csv(io.BytesIO(raw), sep=r"\s+", header=None, engine="c", dtype=dtype)
    except (ValueError, pd.errors.ParserError) as exc:
        if raw[:65536].translate(None, TEXT_BYTES):  # a control or non-ASCII byte: not a text table
            raise BadInput(f"{path}: binary data, not a numeric text table; fetch it again") from exc
        raise BadInput(f"{path}: not a numeric table ({reason(exc)})") from exc
    if ncols is not None and table.shape[1] != ncols:
        raise BadInput(f"{path}: expected {ncols} columns, found {table.shape[1]}; is this the right file?")
    values = table.to_numpy()
    if not allow_nan and np.isnan(values).any():  # pandas pads a short row with NaN
        row = int(np.flatnonzero(np.isnan(values).any(axis=1))[0]) + 1
        width = ncols if ncols is not None else table.shape[1]
        raise BadInput(f"{path}: row {row} has fewer than {width} values or a missing value; fetch it again")
    return values
