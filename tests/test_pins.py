"""Pins a user can re-establish (issue 24 point 3): every file a reader reads is pinned or listed as
unpinned, a renamed file is refused, and a legitimate copy that differs is checked and pinned with
`har data pin` (the shipped pins untouched). Real CLI, synthetic MyoGym files in the published layout."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from har.data.pins import SHIPPED_DIR, check_read, pin_set, read_pins
from har.data.registry import BUILTIN
from har.errors import BadInput, HarError
from tests.cli_helpers import REPO, har, one_line_error
from tests.test_formats import MYO_SEGMENTS, myogym_arrays, save_v5


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose mirror holds a MyoGym.mat that is not the pinned public copy (a 'publisher's copy')."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    segments = [(p, 5 if e == 30 else e, n) for p, e, n in MYO_SEGMENTS]  # training also has exercise 5
    save_v5(tmp_path / "mirror" / "myogym" / "MyoGym.mat", *myogym_arrays(segments))
    return tmp_path


def test_a_differing_copy_is_refused_then_checked_pinned_and_used(project: Path) -> None:
    shipped = (SHIPPED_DIR / "myogym.sha256").read_bytes()
    proc = har("data", "fetch", "myogym", "--mirror", "mirror", cwd=project)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "MyoGym.mat: git blob sha1 mismatch" in line, line
    assert not (project / "data" / "raw" / "myogym").exists()

    # without --yes and without a terminal to answer, nothing is pinned
    proc = har("data", "pin", "myogym", "--source", "mirror/myogym", cwd=project)
    assert proc.returncode != 0 and not (project / "pins").exists()
    assert "DIFFERS" in proc.stdout and "81be7eaed65fc76471655f53e10432cf99c8a7cb" in proc.stdout

    proc = har("data", "pin", "myogym", "--source", "mirror/myogym", "--yes", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "0 file(s) as pinned, 1 differ" in proc.stdout
    (pin,) = read_pins(project / "pins" / "myogym.sha256", shipped=False)
    assert pin.path == "MyoGym.mat" and pin.kind == "sha256"
    assert (SHIPPED_DIR / "myogym.sha256").read_bytes() == shipped  # the shipped pins are untouched

    proc = har("data", "fetch", "myogym", "--mirror", "mirror", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "verified 1 files against pins/myogym.sha256 (your pins)" in proc.stderr
    assert har("data", "prepare", "myogym", cwd=project).returncode == 0
    info = har("data", "info", "myogym", cwd=project).stdout
    assert "pins/myogym.sha256 (your pins)" in info and "replacing har/data/checksums/myogym.sha256" in info


def test_a_renamed_file_is_not_read_unchecked(project: Path) -> None:
    raw = project / "data" / "raw" / "myogym"
    raw.mkdir(parents=True)
    shutil.copy(project / "mirror" / "myogym" / "MyoGym.mat", raw / "MyoGym_publisher.mat")
    proc = har("data", "prepare", "myogym", cwd=project)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "MyoGym_publisher.mat: not pinned by har/data/checksums/myogym.sha256" in line, line
    assert "har data pin myogym" in line
    assert not (project / "data" / "prepared" / "myogym").exists()


def test_every_reader_reports_its_files_and_every_shipped_dataset_is_pinned_or_says_why() -> None:
    for spec in BUILTIN.values():
        if spec.format in ("custom", "image_folder"):
            continue
        assert pin_set(spec) is not None, spec.name  # a shipped pin file for every built-in reader
    with pytest.raises(HarError, match="reported no file read"):
        check_read(BUILTIN["myogym"], Path("."), [])


def test_unpinned_files_are_listed_by_info_and_accepted(tmp_path: Path) -> None:
    spec = BUILTIN["uci_har"]
    signal = tmp_path / "UCI HAR Dataset" / "train" / "Inertial Signals" / "body_acc_x_train.txt"
    signal.parent.mkdir(parents=True)
    signal.write_text("0\n")
    check_read(spec, tmp_path, [signal])  # listed as unpinned: accepted
    stray = tmp_path / "UCI HAR Dataset" / "train" / "y_train_old.txt"
    stray.write_text("1\n")
    with pytest.raises(
        BadInput, match=re.escape("y_train_old.txt: not pinned by har/data/checksums/uci_har.sha256")
    ):
        check_read(spec, tmp_path, [stray])
    info = har("data", "info", "uci_har", cwd=REPO).stdout
    assert "unpinned" in info and "Inertial Signals" in info


def test_a_bad_user_pin_file_is_bad_input_naming_the_line(project: Path) -> None:
    (project / "pins").mkdir()
    (project / "pins" / "myogym.sha256").write_text("# mine\nnot-a-digest  MyoGym.mat\n")
    proc = har("data", "fetch", "myogym", "--mirror", "mirror", cwd=project)
    assert proc.returncode == 2
    assert "pins/myogym.sha256:2: expected '<sha256 or git blob id>  <path>'" in one_line_error(proc)


def test_pins_dir_is_a_params_setting(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params.setdefault("data", {})["pins_dir"] = "config/pins"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    proc = har("data", "pin", "myogym", "--source", "mirror/myogym", "--yes", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (project / "config" / "pins" / "myogym.sha256").is_file()
