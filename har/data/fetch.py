"""Fetch a dataset into ``raw_dir/<name>``: from the repository, a local mirror or the publisher.

Downloads resume with HTTP ``Range`` requests and are checked against the sha256 / git blob id the
registry pins; archives are unpacked only after every member name has been checked; the extracted
files are then checked against ``har/data/checksums/<spec.checksums>``. The output folder is written
atomically: a failed fetch leaves no partial ``raw_dir/<name>``.
"""

from __future__ import annotations

import gzip
import http.client
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlparse

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from har.atomic import atomic_dir
from har.data.pins import file_digest, git_blob_sha1, user_pin_file, verify_members
from har.data.spec import DatasetSpec, Source
from har.errors import BadInput, HarError

CHUNK = 1 << 20
TIMEOUT_S = 15
ZIP_SUFFIXES = (".zip", ".whl")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
CORRUPT = (zipfile.BadZipFile, tarfile.ReadError, EOFError, zlib.error, gzip.BadGzipFile)
NETWORK = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)

console = Console(stderr=True)


class CorruptArchive(BadInput):
    """An archive that cannot be read to the end (truncated download, bad CRC)."""


def fetch(
    spec: DatasetSpec,
    raw_dir: Path,
    mirror: Path | None = None,
    *,
    repo_root: Path = Path("."),
    show_progress: bool = True,
    pins_dir: Path | None = None,
) -> Path:
    """Build ``raw_dir/<spec.name>`` from the bundled folder, ``mirror/<spec.name>`` or the sources.

    Where ``har data pin`` pinned the user's own copy (``pins_dir``), its pins replace the shipped ones,
    the published archives' digests included (they describe the publisher's bytes, not the user's)."""
    user_pinned = pins_dir is not None and user_pin_file(spec.name, pins_dir).is_file()
    raw_dir = Path(raw_dir)
    build: Callable[[Path], None]
    if spec.bundled:
        src = Path(repo_root) / spec.bundled
        if not src.is_dir():
            raise BadInput(f"{src}: bundled folder of {spec.name!r} is missing; the checkout is incomplete")
        build = partial(_copy_tree, src)
    elif mirror is not None:
        folder = Path(mirror) / spec.name
        if not folder.is_dir():
            wanted = ", ".join(s.filename for s in spec.sources) or "its files"
            raise BadInput(
                f"{folder}: mirror folder of {spec.name!r} does not exist; put the official archive "
                f"({wanted}) or the extracted files there, or fetch without a mirror"
            )
        build = partial(_from_mirror, spec, folder, user_pinned)
    elif spec.sources:
        archives = [_download(s, raw_dir / ".downloads", spec, show_progress) for s in spec.sources]
        build = partial(_extract_downloads, archives, spec.name)
    else:
        raise BadInput(
            f"dataset {spec.name!r} has no download source and no bundled folder; nothing to fetch"
        )
    dest = raw_dir / spec.name
    with atomic_dir(dest) as tmp:
        build(tmp)
        verify_members(spec, tmp, pins_dir)
    return dest


def _extract_downloads(archives: list[Path], name: str, tmp: Path) -> None:
    """Unpack downloaded archives; a corrupt one is deleted so that the next fetch starts afresh."""
    for archive in archives:
        try:
            safe_extract(archive, tmp, name=name)
        except CorruptArchive:
            archive.unlink(missing_ok=True)
            raise


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy the files of ``src`` into ``dst`` (contents only: read-only modes are not carried over)."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _from_mirror(spec: DatasetSpec, folder: Path, user_pinned: bool, tmp: Path) -> None:
    """Extract the official archives found in ``folder``; without any, copy the folder as it is."""
    found = [(s, p) for s in spec.sources if (p := _mirror_file(s, folder)) is not None]
    if not found:
        _copy_tree(folder, tmp)
    for source, path in found:
        if not user_pinned:
            _check_source(source, path, spec, downloaded=False)
        safe_extract(path, tmp, name=spec.name)


def unpack_copy(spec: DatasetSpec, folder: Path, dest: Path) -> None:
    """A user's copy (the official archive in ``folder``, else ``folder``'s files) unpacked into ``dest``,
    unchecked: ``har data pin`` compares it with the pins."""
    _from_mirror(spec, folder, True, dest)


def _mirror_file(source: Source, folder: Path) -> Path | None:
    """The file in ``folder`` named as the source's filename or its URL's basename, if any."""
    url_name = unquote(PurePosixPath(urlparse(source.url).path).name)
    for name in (source.filename, url_name):
        if name and (folder / name).is_file():
            return folder / name
    return None


def _mirror_hint(name: str) -> str:
    return f"download the file yourself and put it in $HAR_DATA_MIRROR/{name}/ (or pass --mirror DIR)"


def _download(source: Source, downloads: Path, spec: DatasetSpec, show_progress: bool) -> Path:
    """Download (or resume) one source into ``downloads/<filename>`` and verify it."""
    if PurePosixPath(source.filename).name != source.filename or "\\" in source.filename:
        raise BadInput(
            f"dataset {spec.name!r}: source filename {source.filename!r} must be a plain file name"
        )
    final = downloads / source.filename
    if not final.exists():
        downloads.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        _stream(source.url, part, spec.name, show_progress)
        _check_source(source, part, spec, downloaded=True, shown=final)
        part.replace(final)
    else:
        _check_source(source, final, spec, downloaded=True)
    return final


def _stream(url: str, part: Path, name: str, show_progress: bool) -> None:
    """Write ``url`` to ``part``, resuming an existing partial file with a Range request."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "har-lab"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            if response.status != 206:
                start = 0
            length = response.length
            with part.open("ab" if start else "wb") as out, _progress(show_progress) as progress:
                total = None if length is None else start + length
                task = progress.add_task(part.stem, total=total, completed=start)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    progress.advance(task, len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            part.unlink()
            _stream(url, part, name, show_progress)
            return
        raise HarError(f"cannot download {url} (HTTP {exc.code} {exc.reason}); {_mirror_hint(name)}") from exc
    except NETWORK as exc:
        reason = str(getattr(exc, "reason", "") or exc) or type(exc).__name__
        raise HarError(f"cannot download {url} ({reason}); {_mirror_hint(name)}") from exc
    if length is not None and received < length:
        raise HarError(
            f"download of {url} was cut after {start + received} of {start + length} bytes; run "
            f"'har data fetch {name}' again to resume, or {_mirror_hint(name)}"
        )


def _progress(show: bool) -> Progress:
    """A byte progress bar (size, speed, ETA) on stderr; silent unless ``show``."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    return Progress(*columns, TimeRemainingColumn(), console=console, disable=not show)


def _check_source(
    source: Source, path: Path, spec: DatasetSpec, *, downloaded: bool, shown: Path | None = None
) -> None:
    """Verify the pinned sha256 / git blob id of a source file; a bad download is deleted."""
    shown = shown or path
    pins = (("sha256", source.sha256, file_digest), ("git blob sha1", source.git_blob_sha1, git_blob_sha1))
    for label, expected, digest in pins:
        if expected is None:
            continue
        actual = digest(path)
        if actual != expected.lower():
            if downloaded:
                path.unlink(missing_ok=True)
                fix = f"the file was deleted; re-run 'har data fetch {spec.name}'"
            else:
                fix = (
                    f"replace it with a good copy, or run 'har data fetch {spec.name}' without a mirror; a "
                    f"legitimate copy that differs: check it, then 'har data pin {spec.name} --source {path.parent}'"
                )
            raise BadInput(
                f"{shown}: {label} mismatch: expected {expected}, got {actual}; {fix} "
                f"(or put a good copy in $HAR_DATA_MIRROR/{spec.name}/)"
            )
    if source.sha256 is None and source.git_blob_sha1 is None:
        members = (
            f"the extracted files are checked against {spec.checksums}"
            if spec.checksums
            else "no pin file checks the extracted files"
        )
        console.print(f"{shown.name}: sha256 {file_digest(path)} (the archive is unpinned; {members})")


def safe_extract(archive: Path, dest: Path, *, name: str | None = None) -> None:
    """Unpack a zip / tar(.gz) into ``dest`` after checking every member name; copy any other file.

    Zips inside the archive are unpacked in place (same checks) and removed; ``__MACOSX/`` is skipped.
    ``name`` (the dataset) only appears in the message for a corrupt archive.
    """
    archive, dest = Path(archive), Path(dest)
    lower = archive.name.lower()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if lower.endswith(ZIP_SUFFIXES):
            members = _extract_zip(archive, dest)
        elif lower.endswith(TAR_SUFFIXES):
            members = _extract_tar(archive, dest)
        else:
            shutil.copyfile(archive, dest / archive.name)
            return
    except CORRUPT as exc:
        raise CorruptArchive(
            f"{archive}: truncated or corrupt archive; delete it and run "
            f"'har data fetch {name or '<dataset>'}' again"
        ) from exc
    for member in members:
        inner = dest / member
        if member.lower().endswith(".zip") and inner.is_file():
            safe_extract(inner, inner.parent, name=name)
            inner.unlink()


def _check_member(archive: Path, member: str) -> None:
    """Reject absolute names, drive letters and ``..`` components."""
    posix = member.replace("\\", "/")
    if posix.startswith("/") or PureWindowsPath(member).drive or ".." in PurePosixPath(posix).parts:
        raise BadInput(f"{archive}: unsafe member {member!r} (absolute path or '..'); nothing was extracted")


def _extract_zip(archive: Path, dest: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.filename.startswith("__MACOSX/")]
        for info in infos:
            _check_member(archive, info.filename)
        for info in infos:
            zf.extract(info, dest)
    return [i.filename for i in infos if not i.is_dir()]


def _extract_tar(archive: Path, dest: Path) -> list[str]:
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if not m.name.startswith("__MACOSX/")]
        for member in members:
            _check_member(archive, member.name)
            if member.issym() or member.islnk() or member.isdev():
                raise BadInput(
                    f"{archive}: member {member.name!r} is a link or device; nothing was extracted"
                )
        tf.extractall(dest, members=members, filter="data")
    return [m.name for m in members if m.isfile()]
