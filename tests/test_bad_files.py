"""Junk, truncated or wrong-layout MyoGym ``.mat`` and OPPORTUNITY ``.dat`` files (issue 24): ``har data
prepare`` exits 2 with one line naming the file and the problem, never a traceback, and writes nothing.

Each case starts from synthetic files in the published layouts (the builders of tests/test_formats.py),
breaks one thing, and runs the real CLI entry point in this process (no Ray, no training)."""

from __future__ import annotations

import gzip
import io
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import scipy.sparse

from har.data.registry import BUILTIN
from tests.cli_helpers import REPO, har_in_process, one_line_error
from tests.test_formats import (
    MYO_SEGMENTS,
    OPP_RUNS,
    make_opportunity,
    myogym_arrays,
    opp_line,
    opportunity_table,
    read,
    save_v5,
    save_v73,
)

# person 2 performs exercise 5 instead of 30, so that the intact file prepares (see test_myogym_prepare)
SEGMENTS = [(p, 5 if e == 30 else e, n) for p, e, n in MYO_SEGMENTS]
MYO = "data/raw/myogym/MyoGym.mat"
OPP_DIR = "data/raw/opportunity/OpportunityUCIDataset/dataset"
OPP = f"{OPP_DIR}/S1-ADL4.dat"  # the run every Opportunity case breaks
OPP_ROWS = OPP_RUNS["S1-ADL4"]


def project(root: Path) -> Path:
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    return root


def prepare_fails(root: Path, name: str, path: str, fragment: str) -> str:
    """``har data prepare name``: exit 2, one line naming ``path`` and ``fragment``, no library warning,
    nothing under data/prepared."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proc = har_in_process("data", "prepare", name, cwd=root)
    assert proc.returncode == 2, proc.stderr
    message = one_line_error(proc)
    assert path in message, message
    assert fragment in message, message
    noisy = [w for w in caught if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)]
    assert not noisy, [f"{w.category.__name__}: {w.message}" for w in noisy]
    prepared = root / "data" / "prepared"
    assert not prepared.exists() or not any(prepared.iterdir()), list(prepared.iterdir())
    return message


# ----------------------------------------------------------------------------------------------------------
# MyoGym.mat


def arrays() -> tuple[np.ndarray, np.ndarray]:
    return myogym_arrays(SEGMENTS)


def v5_bytes(**variables: object) -> bytes:
    data, labels = arrays()
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"raw_data": data, "raw_data_labels": labels, **variables})
    return buffer.getvalue()


def v73_bytes(path: Path) -> bytes:
    return save_v73(path, *arrays()).read_bytes()


def v5_with(**variables: object) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(v5_bytes(**variables))


def v73_edit(edit: Callable[[h5py.File, np.ndarray, np.ndarray], None]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        data, labels = arrays()
        save_v73(path, data, labels)
        with h5py.File(path, "r+") as f:
            edit(f, data, labels)

    return write


def replace_raw_data(value, matlab_class: bytes | None = None):
    def edit(f: h5py.File, data: np.ndarray, labels: np.ndarray) -> None:
        del f["raw_data"]
        dataset = f.create_dataset("raw_data", data=value(f, data))
        if matlab_class:
            dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)

    return v73_edit(edit)


def v73_struct(f: h5py.File, data: np.ndarray, labels: np.ndarray) -> None:
    del f["raw_data"]
    group = f.create_group("raw_data")
    group.attrs["MATLAB_class"] = np.bytes_(b"struct")
    group.create_dataset("emg", data=data.T)


def with_labels(edit: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        data, labels = arrays()
        save_v5(path, data, edit(labels.copy()))

    return write


def with_data(edit: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        data, labels = arrays()
        save_v5(path, edit(data.copy()), labels)

    return write


def set_at(array: np.ndarray, index, value) -> np.ndarray:
    array[index] = value
    return array


def corrupt_gzip(content: bytes) -> bytes:
    """A gzip whose deflate stream (after the 10-byte header) is junk: zlib.error, not gzip.BadGzipFile."""
    packed = bytearray(gzip.compress(content))
    packed[10:26] = b"\xff" * 16
    return bytes(packed)


MYOGYM_CASES: dict[str, tuple[Callable[[Path], object], str, str]] = {  # case -> (write, file, fragment)
    "random-bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), MYO, "not a MATLAB"),
    "empty": (lambda p: p.write_bytes(b""), MYO, "empty file"),
    "v5-truncated-half": (lambda p: p.write_bytes(v5_bytes()[: len(v5_bytes()) // 2]), MYO, "truncated"),
    "v5-truncated-header": (lambda p: p.write_bytes(v5_bytes()[:100]), MYO, "truncated"),
    "v73-truncated-half": (lambda p: p.write_bytes(v73_bytes(p)[: len(v73_bytes(p)) // 2]), MYO, "v7.3"),
    "text-renamed": (lambda p: p.write_text("1 2 3\n4 5 6\n"), MYO, "not a MATLAB"),
    "gz-not-gzip": (lambda p: p.with_name("MyoGym.mat.gz").write_bytes(b"junk" * 100), f"{MYO}.gz", "gzip"),
    "gz-corrupt": (
        lambda p: p.with_name("MyoGym.mat.gz").write_bytes(corrupt_gzip(v5_bytes())),
        f"{MYO}.gz",
        "corrupt gzip",
    ),
    "gz-empty": (
        lambda p: p.with_name("MyoGym.mat.gz").write_bytes(gzip.compress(b"")),
        f"{MYO}.gz",
        "empty",
    ),
    "a-directory": (lambda p: p.mkdir(), MYO, "cannot read"),
    "v5-16-columns": (with_data(lambda d: d[:, :16]), MYO, "expected [N, 17]"),
    "v73-16-columns": (replace_raw_data(lambda f, d: d[:, :16].T), MYO, "expected [N, 17]"),
    "v5-vector": (v5_with(raw_data=arrays()[0][:, 0]), MYO, f"shape (1, {len(arrays()[0])})"),
    "v73-vector": (replace_raw_data(lambda f, d: d[:, 0]), MYO, "expected [N, 17]"),
    "v5-no-rows": (v5_with(raw_data=np.zeros((0, 17)), raw_data_labels=np.zeros((0, 2))), MYO, "no rows"),
    "v5-char": (v5_with(raw_data=np.array(["x" * 17] * 4)), MYO, "char array"),
    "v5-cell": (v5_with(raw_data=np.array([["ab"] * 17] * 4, dtype=object)), MYO, "cell array"),
    "v73-char": (replace_raw_data(lambda f, d: np.full((17, 4), 65, np.uint16), b"char"), MYO, "char"),
    "v73-strings": (replace_raw_data(lambda f, d: np.full((17, 4), b"ab")), MYO, "char array"),
    "v73-cell": (
        replace_raw_data(lambda f, d: np.full((17, 4), f["raw_data_labels"].ref, h5py.ref_dtype), b"cell"),
        MYO,
        "MATLAB cell",
    ),
    "v5-complex": (with_data(lambda d: d + 1j), MYO, "complex"),
    "v73-complex": (replace_raw_data(lambda f, d: (d + 1j).T), MYO, "complex"),
    "v5-sparse": (
        lambda p: p.write_bytes(v5_bytes(raw_data=scipy.sparse.csc_matrix(arrays()[0]))),
        MYO,
        "sparse",
    ),
    "v5-struct": (v5_with(raw_data={"emg": np.ones((4, 8)), "acc": np.ones((4, 3))}), MYO, "MATLAB struct"),
    "v73-struct": (v73_edit(v73_struct), MYO, "MATLAB struct"),
    "nan-only": (with_data(lambda d: np.full_like(d, np.nan)), MYO, "no value at all"),
    "infinite-value": (with_data(lambda d: set_at(d, (7, 11), np.inf)), MYO, "row 8 column 12 is infinite"),
    "labels-too-short": (with_labels(lambda lab: lab[:-5]), MYO, "raw_data_labels has shape"),
    "labels-one-column": (with_labels(lambda lab: lab[:, :1]), MYO, "raw_data_labels has shape"),
    "labels-nan": (with_labels(lambda lab: set_at(lab, (3, 1), np.nan)), MYO, "row 4 holds nan"),
    "labels-fraction": (with_labels(lambda lab: set_at(lab, (3, 0), 1.5)), MYO, "row 4 holds 1.5"),
    "labels-char": (v5_with(raw_data_labels=np.array(["ab"] * len(arrays()[0]))), MYO, "char array"),
}


@pytest.mark.parametrize("case", MYOGYM_CASES)
def test_bad_myogym_file(tmp_path: Path, case: str) -> None:
    write, path, fragment = MYOGYM_CASES[case]
    root = project(tmp_path)
    (root / "data/raw/myogym").mkdir(parents=True)
    write(root / MYO)
    if (root / f"{MYO}.gz").exists() and (root / MYO).is_file():
        (root / MYO).unlink()
    prepare_fails(root, "myogym", path, fragment)


@pytest.mark.parametrize("save", [save_v5, save_v73], ids=["v5", "v7.3"])
def test_intact_myogym_file_reads(tmp_path: Path, save) -> None:
    """The cases above break one thing each in files that read."""
    save(tmp_path / "MyoGym.mat", *arrays())
    assert len(read(BUILTIN["myogym"], tmp_path).windows) > 0


# ----------------------------------------------------------------------------------------------------------
# OPPORTUNITY S<n>-ADL<k>.dat


def rows(table: np.ndarray, width: int = 250) -> str:
    return "".join(opp_line(row[:width]) + "\n" for row in table)


def table() -> np.ndarray:
    return opportunity_table("S1-ADL4", OPP_ROWS)


def dat(text: Callable[[], str | bytes]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        content = text()
        (folder / "S1-ADL4.dat").write_bytes(content.encode() if isinstance(content, str) else content)

    return write


def with_value(row: int, column: int, value: float) -> Callable[[], str]:
    """The run with one value (0-based row and column) replaced, written as Python prints it."""

    def text() -> str:
        lines = rows(table()).splitlines()
        tokens = lines[row].split()
        tokens[column] = repr(value)
        lines[row] = " ".join(tokens)
        return "\n".join(lines) + "\n"

    return text


def gz(content: Callable[[str], bytes]) -> Callable[[Path], None]:
    """S1-ADL4.dat replaced by S1-ADL4.dat.gz holding ``content(the run's text)``."""

    def write(folder: Path) -> None:
        text = (folder / "S1-ADL4.dat").read_text()
        (folder / "S1-ADL4.dat").unlink()
        (folder / "S1-ADL4.dat.gz").write_bytes(content(text))

    return write


def as_directory(folder: Path) -> None:
    (folder / "S1-ADL4.dat").unlink()
    (folder / "S1-ADL4.dat").mkdir()


OPPORTUNITY_CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {  # case -> (write, file, fragment)
    "random-bytes": (dat(lambda: np.random.default_rng(0).bytes(4096)), OPP, "binary data"),
    "utf16-text": (dat(lambda: rows(table()).encode("utf-16")), OPP, "binary data"),
    "empty": (dat(lambda: b""), OPP, "empty file"),
    "249-columns": (dat(lambda: rows(table(), 249)), OPP, "expected 250 columns, found 249"),
    "251-columns": (dat(lambda: rows(table()).replace("\n", " 0\n")), OPP, "expected 250 columns, found 251"),
    "non-numeric-token": (dat(lambda: rows(table()).replace(" ", " abc ", 1)), OPP, "'abc'"),
    "header-line": (dat(lambda: "MILLISEC RKN^accX\n" + rows(table())), OPP, "not a numeric table"),
    "truncated-last-row": (dat(lambda: rows(table())[:-300]), OPP, f"row {OPP_ROWS} has fewer than 250"),
    "truncated-last-number": (dat(lambda: rows(table())[:-2]), OPP, "last row may be cut short"),
    "fractional-label": (dat(with_value(9, 249, 406516.5)), OPP, "row 10 column 250 holds 406516.5"),
    "fractional-unused-label": (dat(with_value(9, 243, 1.5)), OPP, "row 10 column 244 holds 1.5"),
    "infinite-label": (dat(with_value(9, 249, np.inf)), OPP, "row 10 column 250 holds inf"),
    "huge-label": (dat(with_value(9, 249, 1e30)), OPP, "row 10 column 250 holds 1e+30"),
    "infinite-signal": (dat(with_value(9, 3, -np.inf)), OPP, "row 10 column 4 is infinite"),
    "gz-not-gzip": (gz(lambda text: b"\x1f\x8b" + b"junk" * 100), f"{OPP}.gz", "corrupt gzip"),
    "gz-truncated": (gz(lambda text: gzip.compress(text.encode())[:3000]), f"{OPP}.gz", "corrupt gzip"),
    "gz-corrupt": (gz(lambda text: corrupt_gzip(text.encode())), f"{OPP}.gz", "corrupt gzip"),
    "a-directory": (as_directory, OPP, "cannot read"),
    "column-names-junk": (
        lambda f: (f / "column_names.txt").write_bytes(np.random.default_rng(1).bytes(900)),
        f"{OPP_DIR}/column_names.txt",
        "no 'Column: <n> <name>' lines",
    ),
    "column-names-directory": (
        lambda f: (f / "column_names.txt").mkdir(),
        f"{OPP_DIR}/column_names.txt",
        "cannot read",
    ),
}


@pytest.mark.parametrize("case", OPPORTUNITY_CASES)
def test_bad_opportunity_file(tmp_path: Path, case: str) -> None:
    write, path, fragment = OPPORTUNITY_CASES[case]
    root = project(tmp_path)
    make_opportunity(root / "data/raw/opportunity", metadata=False)
    write(root / OPP_DIR)
    prepare_fails(root, "opportunity", path, fragment)


def test_opportunity_reads_without_column_names(tmp_path: Path) -> None:
    """column_names.txt is optional (checked when there); the cases above start from files that read."""
    make_opportunity(tmp_path, metadata=False)
    assert not list(tmp_path.rglob("column_names.txt"))
    assert len(read(BUILTIN["opportunity"], tmp_path).windows) > 0
