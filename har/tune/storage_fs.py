"""Tune's storage on a local or shared (NFS) folder, with every file written whole or not at all.

Tune overwrites its experiment state (``experiment_state-*.json``, the searcher's pickle) in place on
each snapshot. A driver SIGKILLed mid-write (a Slurm preemption, an OOM kill) leaves that file empty,
and ``--resume`` then cannot read the study at all. Object stores do not have the problem (an upload
replaces the object only once it completes); a folder gets it here: each file is written beside its
target under a hidden name and renamed over it when complete, as ``os.replace`` does atomically.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import pyarrow
import pyarrow.fs as pafs


def storage_filesystem(storage: str) -> pafs.FileSystem | None:
    """The filesystem to give Tune for ``storage``: atomic writes for a folder, None (Tune's own choice)
    for a URI such as ``s3://``."""
    return None if "://" in storage else pafs.PyFileSystem(AtomicLocalHandler())


class _RenameOnClose(io.FileIO):
    """A new file under a hidden temporary name that takes ``target``'s name once closed."""

    def __init__(self, target: str) -> None:
        path = Path(target)
        self._target = target
        self._partial = str(path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}"))
        super().__init__(self._partial, "w")

    def close(self) -> None:
        if self.closed:
            return
        self.flush()
        os.fsync(self.fileno())  # the bytes reach the disk (or the NFS server) before the name does
        super().close()
        os.replace(self._partial, self._target)


class AtomicLocalHandler(pafs.FileSystemHandler):
    """pyarrow's LocalFileSystem, except that output streams write a temporary file then rename it."""

    def __init__(self) -> None:
        self._local = pafs.LocalFileSystem()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __reduce__(self):  # Tune ships the storage filesystem to every trial's worker
        return (AtomicLocalHandler, ())

    def get_type_name(self) -> str:
        return "local-atomic"

    def normalize_path(self, path: str) -> str:
        return self._local.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self._local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self._local.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise OSError("refusing to delete the contents of the root folder")

    def delete_file(self, path: str) -> None:
        self._local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self._local.open_input_stream(src) as source, self.open_output_stream(dest, None) as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)

    def open_input_stream(self, path: str) -> pyarrow.NativeFile:
        return self._local.open_input_stream(path)

    def open_input_file(self, path: str) -> pyarrow.NativeFile:
        return self._local.open_input_file(path)

    def open_output_stream(self, path: str, metadata: dict | None) -> pyarrow.NativeFile:
        return pyarrow.PythonFile(_RenameOnClose(path), mode="w")

    def open_append_stream(self, path: str, metadata: dict | None) -> pyarrow.NativeFile:
        return self._local.open_append_stream(path)
