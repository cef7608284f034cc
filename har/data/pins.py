"""Pins: the digest each raw file of a dataset must have, and the checks that use them.

A pin file lists ``<digest>  <path>`` lines (sha256sum format; a 64-hex digest is a sha256, a 40-hex
digest a git blob id), paths relative to the dataset's raw folder (an extra top folder is fine). The
shipped pins live in ``har/data/checksums/`` and are never edited by a command. A user whose legitimate
copy differs pins it with ``har data pin NAME``, which writes ``<pins_dir>/NAME.sha256`` in the project
(``params.yaml`` ``data.pins_dir``, default ``pins/``); that file then replaces the shipped pins for NAME.
Every file a reader reads must be pinned; the formats whose files are the user's own (custom tables,
image folders) are listed as unpinned by ``har data info``.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from rich.console import Console

from har.data.spec import DatasetSpec
from har.errors import BadInput, HarError

SHIPPED_DIR = Path(__file__).parent / "checksums"
UNPINNED_FORMATS = {"custom": "the user's own tables", "image_folder": "the user's own images"}
CHUNK = 1 << 20
console = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Pin:
    digest: str  # lowercase hex: 64 characters sha256, 40 characters git blob sha1
    path: str  # relative to the raw folder

    @property
    def kind(self) -> str:
        return "sha256" if len(self.digest) == 64 else "git blob sha1"


@dataclass(frozen=True)
class PinSet:
    file: Path
    pins: list[Pin]
    user: bool  # written by 'har data pin' (replaces the shipped pins)

    @property
    def label(self) -> str:
        return f"{self.file} (your pins)" if self.user else f"har/data/checksums/{self.file.name}"


def user_pin_file(name: str, pins_dir: Path) -> Path:
    return Path(pins_dir) / f"{name}.sha256"


def pin_set(spec: DatasetSpec, pins_dir: Path | None = None) -> PinSet | None:
    """The user's pins of ``spec`` where ``har data pin`` wrote them, else the shipped ones, else None."""
    if pins_dir is not None and (user := user_pin_file(spec.name, pins_dir)).is_file():
        return PinSet(user, read_pins(user, shipped=False), user=True)
    if spec.checksums:
        return PinSet(SHIPPED_DIR / spec.checksums, read_pins(SHIPPED_DIR / spec.checksums), user=False)
    return None


def read_pins(pin_file: Path, *, shipped: bool = True) -> list[Pin]:
    """The pins of a sha256sum-format file; ``#`` lines are comments."""
    if not pin_file.is_file():
        raise HarError(f"{pin_file}: pin file is missing from the installation")
    pins = []
    for number, line in enumerate(pin_file.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) not in (40, 64) or not _is_hex(parts[0]):
            error = HarError if shipped else BadInput
            raise error(f"{pin_file}:{number}: expected '<sha256 or git blob id>  <path>'")
        pins.append(Pin(parts[0].lower(), parts[1].lstrip("*")))
    return pins


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def pinned_sha256(pin_name: str, relpath: str) -> str:
    """The sha256 that ``har/data/checksums/<pin_name>`` pins for ``relpath``."""
    pin_file = SHIPPED_DIR / pin_name
    for pin in read_pins(pin_file):
        if pin.path == relpath:
            return pin.digest
    raise HarError(f"{pin_file}: no pin for {relpath}; the installation is incomplete")


def digest_of(path: Path, kind: str, *, decompress_gz: bool = False) -> str:
    if kind == "sha256":
        return file_digest(path, decompress_gz=decompress_gz)
    return git_blob_sha1(path)


def file_digest(path: Path, algo: str = "sha256", *, decompress_gz: bool = False) -> str:
    """Hex digest of a file (of its decompressed bytes with ``decompress_gz``), read in 1 MiB chunks."""
    digest = hashlib.new(algo)
    with gzip.open(path, "rb") if decompress_gz else open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The id git gives the file's content: sha1 of ``b"blob <size>\\0"`` + content."""
    digest = hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- matching files to pins ---------------------------------------------------------------------
def _tree(root: Path) -> tuple[dict[str, Path], dict[str, list[str]]]:
    found: dict[str, Path] = {}
    by_name: dict[str, list[str]] = {}
    for path in Path(root).rglob("*"):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            found[rel] = path
            by_name.setdefault(path.name, []).append(rel)
    return found, by_name


def _locate(rel: str, by_name: dict[str, list[str]]) -> str | None:
    """The shortest tree path equal to ``rel`` or ending with ``/rel``."""
    hits = [p for p in by_name.get(PurePosixPath(rel).name, []) if p == rel or p.endswith("/" + rel)]
    return min(hits, key=len) if hits else None


def locate_pins(pins: list[Pin], root: Path) -> tuple[list[tuple[Pin, Path, bool]], list[Pin]]:
    """Each pin's file under ``root`` (``(pin, path, gzipped)``; ``a/b.txt.gz`` stands for ``a/b.txt``)
    and the pins no file matches."""
    found, by_name = _tree(root)
    located, missing = [], []
    for pin in pins:
        plain = _locate(pin.path, by_name)
        match = plain or _locate(pin.path + ".gz", by_name)
        if match is None:
            missing.append(pin)
        else:
            located.append((pin, found[match], plain is None))
    return located, missing


def actual_digest(pin: Pin, path: Path, gz: bool, shown: str) -> str:
    try:
        return digest_of(path, pin.kind, decompress_gz=gz)
    except (OSError, EOFError, zlib.error) as exc:
        raise BadInput(f"{shown}: corrupt gzip file ({exc}); delete it and fetch the dataset again") from exc


def verify_members(spec: DatasetSpec, root: Path, pins_dir: Path | None = None) -> int:
    """Check the files of ``root`` against the dataset's pins; return how many were verified."""
    pinned = pin_set(spec, pins_dir)
    if pinned is None:
        return 0
    located, missing = locate_pins(pinned.pins, root)
    if missing:
        raise BadInput(
            f"{spec.name}: {len(missing)} of {len(pinned.pins)} files pinned in {pinned.label} are missing "
            f"(first: {missing[0].path}); the copy is incomplete: run 'har data fetch {spec.name}' again or "
            "complete the mirror folder"
        )
    for pin, path, gz in located:
        shown = f"{spec.name}/{path.relative_to(root).as_posix()}"
        actual = actual_digest(pin, path, gz, shown)
        if actual != pin.digest:
            raise BadInput(
                f"{shown}: {pin.kind} mismatch with {pinned.label} ({pin.path}): expected {pin.digest}, got "
                f"{actual}; a damaged copy: delete it and run 'har data fetch {spec.name}' again; a "
                f"legitimate copy that differs: check it, then 'har data pin {spec.name} --source FOLDER'"
            )
    console.print(f"verified {len(pinned.pins)} files against {pinned.label}")
    return len(pinned.pins)


def check_read(spec: DatasetSpec, root: Path, files: list[Path], pins_dir: Path | None = None) -> None:
    """Every file a reader read must be one of the pinned files (a renamed or foreign file is refused)."""
    if spec.format in UNPINNED_FORMATS:
        return
    if not files:
        raise HarError(
            f"the {spec.format} reader reported no file read; it must call har.data.textio.note_read"
        )
    pinned = pin_set(spec, pins_dir)
    located = {path.resolve() for _, path, _ in locate_pins(pinned.pins, root)[0]} if pinned else set()
    for path in files:
        rel = _relative(Path(path), root)
        if Path(path).resolve() not in located and not any(fnmatch(rel, p) for p in spec.unpinned):
            where = f"not pinned by {pinned.label}" if pinned else f"dataset {spec.name!r} has no pins"
            raise BadInput(
                f"{path}: {where}, so its content is unchecked (a renamed or foreign file?); restore the "
                f"published name and run 'har data fetch {spec.name}' again, or check your copy and pin it "
                f"with 'har data pin {spec.name} --source FOLDER'"
            )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return path.as_posix()


# -- pinning the user's own copy ----------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    path: str  # as pinned (relative to the raw folder)
    shipped: Pin | None  # None: a file the shipped pins leave unpinned
    sha256: str  # of the user's copy
    same: bool | None  # None: nothing to compare with


def compare_copy(spec: DatasetSpec, copy: Path) -> list[Comparison]:
    """Each file of the user's extracted copy that the shipped pins name (or leave unpinned) against them."""
    if spec.format in UNPINNED_FORMATS or not spec.checksums:
        raise BadInput(f"dataset {spec.name!r} has no shipped pins ({spec.format} files are the user's own)")
    shipped = read_pins(SHIPPED_DIR / spec.checksums)
    located, missing = locate_pins(shipped, copy)
    if missing:
        raise BadInput(
            f"{copy}: lacks {len(missing)} of the {len(shipped)} pinned files of {spec.name} (first: "
            f"{missing[0].path}); point --source at a complete copy (the extracted folder or the official archive)"
        )
    rows = []
    for pin, path, gz in located:
        shown = path.relative_to(copy).as_posix()
        ours = actual_digest(Pin("0" * 64, pin.path), path, gz, shown)
        same = (
            ours == pin.digest if pin.kind == "sha256" else actual_digest(pin, path, gz, shown) == pin.digest
        )
        rows.append(Comparison(pin.path, pin, ours, same))
    for path in sorted(p for p in Path(copy).rglob("*") if p.is_file()):
        rel = path.relative_to(copy).as_posix()
        if any(fnmatch(rel, p) for p in spec.unpinned):
            rows.append(Comparison(rel, None, file_digest(path), None))
    return rows


def pin_text(spec: DatasetSpec, rows: list[Comparison], source: str, when: str) -> str:
    header = (
        f"# Your pins of {spec.name}, written by 'har data pin {spec.name}' on {when} from {source}.\n"
        f"# They replace har/data/checksums/{spec.checksums} in this project; delete this file to go back.\n"
    )
    return header + "".join(f"{row.sha256}  {row.path}\n" for row in rows)
