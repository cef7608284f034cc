"""Fast readers for the whitespace-separated numeric text files that HAR datasets ship (plain or .gz)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd

from har.errors import BadInput


def find_file(root: Path, relpath: str) -> Path:
    """``root/relpath`` or its ``.gz`` twin; BadInput naming what is missing."""
    for candidate in (root / relpath, root / f"{relpath}.gz"):
        if candidate.is_file():
            return candidate
    raise BadInput(f"{root / relpath}: missing (also looked for .gz); run 'har data fetch' or fix the mirror")


def read_bytes(path: Path) -> bytes:
    """File content, gunzipped when the name ends in .gz."""
    if path.suffix == ".gz":
        try:
            return gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as exc:
            raise BadInput(f"{path}: truncated or corrupt gzip file ({exc}); fetch it again") from exc
    return path.read_bytes()


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
        raise BadInput(f"{path}: not a numeric table ({str(exc).splitlines()[0]})") from exc
    if ncols is not None and table.shape[1] != ncols:
        raise BadInput(f"{path}: expected {ncols} columns, found {table.shape[1]}; is this the right file?")
    values = table.to_numpy()
    if not allow_nan and np.isnan(values).any():  # pandas pads a short row with NaN
        row = int(np.flatnonzero(np.isnan(values).any(axis=1))[0]) + 1
        width = ncols if ncols is not None else table.shape[1]
        raise BadInput(f"{path}: row {row} has fewer than {width} values or a missing value; fetch it again")
    return values
