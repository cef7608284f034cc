"""Tune's storage folder is written whole or not at all (har/tune/storage_fs.py): a writer SIGKILLed
mid-file leaves the previous file, never an empty or cut one."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.fs as pafs

from har.tune.storage_fs import storage_filesystem

WRITER = """
import sys, time
from har.tune.storage_fs import storage_filesystem
stream = storage_filesystem(sys.argv[1]).open_output_stream(sys.argv[1])
stream.write(b'{"trials": [' + b' ' * (1 << 20))
print("half written", flush=True)
time.sleep(60)
"""


def test_a_writer_killed_mid_file_leaves_the_previous_file(tmp_path: Path) -> None:
    state = tmp_path / "experiment_state-1.json"
    state.write_text('{"trials": []}')
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "half written"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert state.read_text() == '{"trials": []}'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "the partial file stayed hidden"


def test_tune_style_uploads_replace_files_whole_and_the_filesystem_travels(tmp_path: Path) -> None:
    staging, storage = tmp_path / "staging", tmp_path / "storage"
    (staging / "checkpoint_000001").mkdir(parents=True)
    (staging / "experiment_state-1.json").write_text('{"trials": [1]}')
    (staging / "checkpoint_000001" / "model.pt").write_bytes(b"\0" * 300_000)
    (storage / "checkpoint_000001").mkdir(parents=True)
    (storage / "experiment_state-1.json").write_text('{"trials": []}')
    fs = pickle.loads(pickle.dumps(storage_filesystem(str(storage))))  # as Tune ships it to a worker
    pafs.copy_files(str(staging), str(storage), destination_filesystem=fs)
    fs.copy_file(str(storage / "experiment_state-1.json"), str(storage / "copy.json"))
    assert (storage / "experiment_state-1.json").read_text() == '{"trials": [1]}'
    assert (storage / "copy.json").read_text() == '{"trials": [1]}'
    assert (storage / "checkpoint_000001" / "model.pt").stat().st_size == 300_000
    assert not [p for p in storage.rglob(".*")], "no partial files left behind"
    assert storage_filesystem("s3://bucket/tune") is None  # object stores replace whole objects already
