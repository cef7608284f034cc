"""har.data.fetch against real files and a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import har.data.pins as pins_mod
from har.data.fetch import fetch, file_digest, git_blob_sha1, safe_extract, verify_members
from har.data.registry import BUILTIN
from har.data.spec import DatasetSpec, Source
from har.errors import BadInput, HarError

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FILES = {"Toy/data/a.txt": b"1 2 3\n4 5 6\n", "Toy/b.txt": b"hello\n"}


@dataclass
class Server:
    """What the test server serves and what it saw."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    cut: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before hanging up (once)
    ignore_range: bool = False
    ranges: list[str | None] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        state: Server = self.server.state  # type: ignore[attr-defined]
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        state.ranges.append(rng)
        start = 0
        if rng and not state.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        cut = state.cut.pop(self.path, None)
        self.wfile.write(payload if cut is None else payload[:cut])
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = Server(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pin folder with toy.sha256 pinning FILES relative to Toy/."""
    folder = tmp_path / "pins"
    folder.mkdir()
    lines = ["# toy pins"] + [f"{sha(data)}  {name.removeprefix('Toy/')}" for name, data in FILES.items()]
    (folder / "toy.sha256").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(pins_mod, "SHIPPED_DIR", folder)
    return folder


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def toy(
    url: str | None = None, *, sha256: str | None = None, checksums: str | None = "toy.sha256"
) -> DatasetSpec:
    sources = [Source(url=url, filename="toy.zip", sha256=sha256)] if url else []
    return BUILTIN["watch"].model_copy(update={"name": "toy", "sources": sources, "checksums": checksums})


def closed_port_url(path: str = "/toy.zip") -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def no_output(raw: Path) -> bool:
    return not (raw / "toy").exists() and not list(raw.glob(".toy.tmp-*"))


def test_download_verifies_and_extracts(server: Server, pins: Path, tmp_path: Path) -> None:
    body = make_zip(FILES)
    server.files["/toy.zip"] = body
    raw = tmp_path / "raw"
    out = fetch(toy(f"{server.url}/toy.zip", sha256=sha(body)), raw, show_progress=True)
    assert out == raw / "toy"
    for name, data in FILES.items():
        assert (out / name).read_bytes() == data
    assert (raw / ".downloads" / "toy.zip").read_bytes() == body
    assert not (raw / ".downloads" / "toy.zip.part").exists()


def test_resume_with_range_request(server: Server, pins: Path, tmp_path: Path) -> None:
    body = make_zip({**FILES, "Toy/noise.bin": os.urandom(300_000)})
    server.files["/toy.zip"] = body
    server.cut["/toy.zip"] = 100_000
    raw = tmp_path / "raw"
    spec = toy(f"{server.url}/toy.zip", sha256=sha(body))
    with pytest.raises(HarError, match="cut after 100000"):
        fetch(spec, raw, show_progress=False)
    part = raw / ".downloads" / "toy.zip.part"
    assert part.stat().st_size == 100_000
    assert no_output(raw)
    fetch(spec, raw, show_progress=False)
    assert server.ranges[-1] == "bytes=100000-"
    assert (raw / ".downloads" / "toy.zip").read_bytes() == body
    assert not part.exists()
    assert (raw / "toy" / "Toy" / "b.txt").read_bytes() == FILES["Toy/b.txt"]


@pytest.mark.parametrize("stale", ["complete (416)", "server ignores Range (200)"])
def test_stale_part_restarts_cleanly(server: Server, pins: Path, tmp_path: Path, stale: str) -> None:
    body = make_zip(FILES)
    server.files["/toy.zip"] = body
    server.ignore_range = "200" in stale
    raw = tmp_path / "raw"
    (raw / ".downloads").mkdir(parents=True)
    (raw / ".downloads" / "toy.zip.part").write_bytes(b"x" * (len(body) if "416" in stale else 10))
    fetch(toy(f"{server.url}/toy.zip", sha256=sha(body)), raw, show_progress=False)
    assert server.ranges[0] is not None
    assert (raw / ".downloads" / "toy.zip").read_bytes() == body


def test_sha256_mismatch_deletes_download(server: Server, pins: Path, tmp_path: Path) -> None:
    server.files["/toy.zip"] = make_zip(FILES)
    raw = tmp_path / "raw"
    with pytest.raises(BadInput, match="sha256 mismatch") as info:
        fetch(toy(f"{server.url}/toy.zip", sha256="0" * 64), raw, show_progress=False)
    assert "0" * 64 in str(info.value) and sha(make_zip(FILES)) in str(info.value)
    assert "toy.zip" in str(info.value) and "har data fetch toy" in str(info.value)
    assert no_output(raw)
    assert not list((raw / ".downloads").iterdir())


def test_truncated_download_is_deleted(
    server: Server, pins: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = make_zip(FILES)
    server.files["/toy.zip"] = body[: len(body) // 2]
    raw = tmp_path / "raw"
    with pytest.raises(BadInput, match="truncated or corrupt archive"):
        fetch(toy(f"{server.url}/toy.zip"), raw, show_progress=False)
    err = capsys.readouterr().err
    assert "unpinned" in err and sha(body[: len(body) // 2]) in err
    assert no_output(raw)
    assert not (raw / ".downloads" / "toy.zip").exists()


def test_truncated_archive_in_mirror(pins: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    body = make_zip(FILES)
    (mirror / "toy" / "toy.zip").write_bytes(body[: len(body) // 2])
    raw = tmp_path / "raw"
    with pytest.raises(BadInput, match="truncated or corrupt archive"):
        fetch(toy(closed_port_url()), raw, mirror=mirror)
    assert no_output(raw)
    assert (mirror / "toy" / "toy.zip").exists()


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs.txt", "C:/drive.txt", "a/../../up.txt"])
def test_zip_with_unsafe_member_writes_nothing(tmp_path: Path, evil: str) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(make_zip({"ok.txt": b"ok", evil: b"evil"}))
    assert evil in zipfile.ZipFile(archive).namelist()
    dest = tmp_path / "box" / "dest"
    with pytest.raises(BadInput, match="unsafe member") as info:
        safe_extract(archive, dest)
    assert evil in str(info.value) and "evil.zip" in str(info.value)
    assert not list(dest.rglob("*"))
    assert [p.name for p in (tmp_path / "box").iterdir()] == ["dest"]


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE])
def test_tar_with_link_or_device_is_rejected(tmp_path: Path, kind: bytes) -> None:
    archive = tmp_path / "links.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        ok = tarfile.TarInfo("ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        link = tarfile.TarInfo("link")
        link.type = kind
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    dest = tmp_path / "dest"
    with pytest.raises(BadInput, match="'link' is a link or device"):
        safe_extract(archive, dest)
    assert not list(dest.rglob("*"))


def test_tar_gz_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "toy.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    safe_extract(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "Toy" / "data" / "a.txt").read_bytes() == FILES["Toy/data/a.txt"]


def test_nested_zip_is_extracted_in_place(tmp_path: Path) -> None:
    inner = make_zip({"UCI HAR Dataset/x.txt": b"x", "__MACOSX/UCI HAR Dataset/._x.txt": b"junk"})
    archive = tmp_path / "outer.zip"
    archive.write_bytes(make_zip({"UCI HAR Dataset.zip": inner, "__MACOSX/._UCI HAR Dataset.zip": b"junk"}))
    dest = tmp_path / "dest"
    safe_extract(archive, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "UCI HAR Dataset",
        "UCI HAR Dataset/x.txt",
    ]


def test_other_files_are_copied(tmp_path: Path) -> None:
    mat = tmp_path / "MyoGym.mat"
    mat.write_bytes(b"\x89HDF\r\n")
    safe_extract(mat, tmp_path / "dest")
    assert (tmp_path / "dest" / "MyoGym.mat").read_bytes() == mat.read_bytes()


def test_mirror_with_official_archive(pins: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = make_zip(FILES)
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "official archive.zip").write_bytes(body)  # URL basename, unquoted
    (mirror / "toy" / "SOURCE.md").write_text("notes")
    spec = toy(closed_port_url("/official%20archive.zip"), sha256=sha(body))
    out = fetch(spec, tmp_path / "raw", mirror=mirror)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt")) == sorted(FILES)
    assert not (out / "SOURCE.md").exists()
    assert "verified 2 files against har/data/checksums/toy.sha256" in capsys.readouterr().err


def test_mirror_archive_with_wrong_checksum(pins: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "toy.zip").write_bytes(make_zip(FILES))
    with pytest.raises(BadInput, match="sha256 mismatch"):
        fetch(toy(closed_port_url(), sha256="f" * 64), tmp_path / "raw", mirror=mirror)
    assert (mirror / "toy" / "toy.zip").exists()
    assert no_output(tmp_path / "raw")


def test_mirror_with_extracted_and_gz_files(pins: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mirror" / "toy"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "a.txt.gz").write_bytes(gzip.compress(FILES["Toy/data/a.txt"]))
    (folder / "b.txt").write_bytes(FILES["Toy/b.txt"])
    (folder / "b.txt").chmod(0o444)
    (folder / "data").chmod(0o555)
    try:
        out = fetch(toy(closed_port_url()), tmp_path / "raw", mirror=tmp_path / "mirror")
    finally:
        (folder / "data").chmod(0o755)
    assert gzip.decompress((out / "data" / "a.txt.gz").read_bytes()) == FILES["Toy/data/a.txt"]
    assert os.access(out / "data", os.W_OK)  # the copy is writable even if the mirror is not
    assert verify_members(toy(), out) == 2


def test_missing_mirror_folder(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    with pytest.raises(BadInput, match=r"toy\.zip") as info:
        fetch(toy(closed_port_url()), tmp_path / "raw", mirror=tmp_path / "mirror")
    assert str(tmp_path / "mirror" / "toy") in str(info.value)


def test_bundled_folder_is_copied(pins: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "repo" / "sample" / "toy"
    for name, data in FILES.items():
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_bytes(data)
    spec = toy().model_copy(update={"bundled": "sample/toy"})
    out = fetch(spec, tmp_path / "raw", repo_root=tmp_path / "repo")
    assert (out / "Toy" / "b.txt").read_bytes() == FILES["Toy/b.txt"]


def test_nothing_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no download source"):
        fetch(toy(checksums=None), tmp_path / "raw")


def test_corrupt_and_missing_members(pins: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for name, data in FILES.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    assert verify_members(toy(), tree) == 2
    (tree / "Toy" / "b.txt").write_bytes(b"HELLO\n")
    with pytest.raises(BadInput, match=r"b\.txt: sha256 mismatch") as info:
        verify_members(toy(), tree)
    assert sha(FILES["Toy/b.txt"]) in str(info.value) and sha(b"HELLO\n") in str(info.value)
    (tree / "Toy" / "b.txt").unlink()
    with pytest.raises(BadInput, match=r"1 of 2 files .* missing \(first: b.txt\).*incomplete"):
        verify_members(toy(), tree)


def test_corrupt_member_in_mirror_leaves_no_output(pins: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mirror" / "toy"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "a.txt").write_bytes(b"bad")
    (folder / "b.txt").write_bytes(FILES["Toy/b.txt"])
    with pytest.raises(BadInput, match=r"data/a\.txt"):
        fetch(toy(closed_port_url()), tmp_path / "raw", mirror=tmp_path / "mirror")
    assert no_output(tmp_path / "raw")


def test_offline_fails_at_once(tmp_path: Path) -> None:
    url = closed_port_url()
    begin = time.monotonic()
    with pytest.raises(HarError) as info:
        fetch(toy(url, sha256="0" * 64), tmp_path / "raw", show_progress=False)
    assert time.monotonic() - begin < 5
    assert not isinstance(info.value, BadInput)
    message = str(info.value)
    assert url in message and "HAR_DATA_MIRROR" in message and "\n" not in message
    assert no_output(tmp_path / "raw")


def test_digests(tmp_path: Path) -> None:
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
    assert file_digest(path) == sha(b"hello\n")
    gz = tmp_path / "hello.txt.gz"
    gz.write_bytes(gzip.compress(b"hello\n"))
    assert file_digest(gz, decompress_gz=True) == sha(b"hello\n")
    assert file_digest(path, "md5") == hashlib.md5(b"hello\n").hexdigest()


@pytest.mark.skipif(
    not (DATASETS / "uci_hapt").is_dir(), reason=f"real data not present: {DATASETS}/uci_hapt"
)
def test_real_uci_hapt_mirror(tmp_path: Path) -> None:
    spec = BUILTIN["uci_hapt"]
    out = fetch(spec, tmp_path / "raw", mirror=DATASETS, show_progress=False)
    assert (out / "RawData" / "acc_exp01_user01.txt.gz").is_file()
    assert verify_members(spec, out) == 128


@pytest.mark.skipif(not (DATASETS / "watch").is_dir(), reason=f"real data not present: {DATASETS}/watch")
def test_real_watch_mirror(tmp_path: Path) -> None:
    spec = BUILTIN["watch"]
    out = fetch(spec, tmp_path / "raw", mirror=DATASETS, show_progress=False)
    assert (out / "watch_dataset.npy.gz").is_file()
    assert verify_members(spec, out) == 1
