"""The ``har`` CLI end to end in a scratch project folder: help, list, fetch, prepare, info, bad input."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import REPO, har, har_in_process, one_line_error


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A scratch project: the repo's params.yaml and bundled sample."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "sample", tmp_path / "sample")
    return tmp_path


def test_help_explains_commands(project: Path) -> None:
    top = har("--help", cwd=project)
    assert top.returncode == 0 and "data" in top.stdout
    data = har("data", "--help", cwd=project)
    for command in ("list", "info", "fetch", "prepare", "permutations"):
        assert command in data.stdout
    fetch_help = har("data", "fetch", "--help", cwd=project)
    assert "HAR_DATA_MIRROR" in fetch_help.stdout


def test_help_paragraphs_reflow_to_the_terminal(project: Path) -> None:
    """A docstring's later paragraphs are joined into one line each (the terminal wraps them), except an
    indented example block, which keeps its lines."""
    from har.cli.helptext import reflow

    doc = """First line.

    A paragraph wrapped
    for the source file.

    Examples:
        har tune --study a
        har tune --study b
    """
    assert reflow(doc) == (
        "First line.\n\nA paragraph wrapped for the source file.\n\n"
        "Examples:\n    har tune --study a\n    har tune --study b"
    )
    # 80 columns: each paragraph of the predict help fills its lines (a source line break cut them short)
    text = har_in_process("predict", "--help", cwd=project, extra_env={"COLUMNS": "80"}).stdout
    description = text.split("╭")[0].split("Usage:")[1].split("\n", 1)[1]
    paragraphs: list[list[str]] = [[]]
    for line in description.splitlines():
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    paragraphs = [p for p in paragraphs if p]
    assert len(paragraphs) >= 2 and max(len(line) for line in text.splitlines()) <= 80
    for lines in paragraphs:
        assert all(len(line.strip()) > 60 for line in lines[:-1]), lines


def test_list_shows_every_dataset(project: Path) -> None:
    proc = har("data", "list", cwd=project)
    assert proc.returncode == 0, proc.stderr
    for name in ("uci_hapt_sample", "uci_hapt", "uci_har", "myogym", "opportunity", "watch"):
        assert name in proc.stdout
    assert har_in_process("data", "list", cwd=project).stdout == proc.stdout  # the same 200-column table


def test_fetch_prepare_info_on_the_bundled_sample(project: Path) -> None:
    before = har("data", "info", "uci_hapt_sample", cwd=project)
    assert before.returncode == 0 and "not prepared yet" in before.stdout
    assert "Reyes-Ortiz" in before.stdout and "CC BY 4.0" in before.stdout
    assert har("data", "fetch", "uci_hapt_sample", cwd=project).returncode == 0
    prep = har("data", "prepare", "uci_hapt_sample", cwd=project)
    assert prep.returncode == 0, prep.stderr
    meta = json.loads((project / "data/prepared/uci_hapt_sample/meta.json").read_text())
    assert meta["split"]["train_subjects"] == [1, 3, 5] and meta["split"]["test_subjects"] == [2, 4]
    info = har("data", "info", "uci_hapt_sample", "--sensors", "gyro", cwd=project)
    assert info.returncode == 0, info.stderr
    n, t, _ = meta["shape"]
    assert f"X ({n}, {t}, 3)" in info.stdout
    for cls, count in zip(meta["classes"], meta["class_counts"]["test"], strict=True):
        assert cls in info.stdout and str(count) in info.stdout
    perms = har("data", "permutations", "uci_hapt_sample", cwd=project)
    assert all(p in perms.stdout for p in ("acc", "gyro", "acc+gyro", "all"))


def test_unknown_dataset_exits_2(project: Path) -> None:
    # the installed console script end to end; the other bad-input checks run har.cli.main in this process,
    # which says the same and leaves the process as it found it
    proc = har("data", "prepare", "ucihar", cwd=project)
    assert proc.returncode == 2
    assert "unknown dataset 'ucihar'" in one_line_error(proc)
    before = (os.getcwd(), dict(os.environ), list(sys.argv))
    same = har_in_process("data", "prepare", "ucihar", cwd=project)
    assert (same.returncode, same.stdout, same.stderr) == (proc.returncode, proc.stdout, proc.stderr)
    assert (os.getcwd(), dict(os.environ), list(sys.argv)) == before


def test_unknown_sensor_group_exits_2(project: Path) -> None:
    proc = har_in_process("data", "info", "myogym", "--sensors", "emg+magnetometer", cwd=project)
    assert proc.returncode == 2
    assert "'magnetometer'" in one_line_error(proc) and "emg, acc, gyro" in proc.stderr


def test_unknown_params_key_exits_2(project: Path) -> None:
    params = project / "params.yaml"
    params.write_text(
        params.read_text().replace("  uci_hapt_sample:\n    window:", "  uci_hapt_sample:\n    windw:")
    )
    proc = har_in_process("data", "prepare", "uci_hapt_sample", cwd=project)
    assert proc.returncode == 2
    assert "datasets.uci_hapt_sample.windw" in one_line_error(proc)


def test_bad_param_value_exits_2(project: Path) -> None:
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("{size: 128, step: 64", "{size: -5, step: 64", 1))
    proc = har_in_process("data", "prepare", "uci_hapt_sample", cwd=project)
    assert proc.returncode == 2
    assert "datasets.uci_hapt_sample.window.size" in one_line_error(proc)


def test_checksum_mismatch_exits_2_and_writes_nothing(project: Path) -> None:
    target = project / "sample" / "uci_hapt" / "RawData" / "acc_exp01_user01.txt.gz"
    target.write_bytes(gzip.compress(b"0.1 0.2 0.3\n"))
    proc = har_in_process("data", "fetch", "uci_hapt_sample", cwd=project)
    assert proc.returncode == 2
    message = one_line_error(proc)
    assert "acc_exp01_user01" in message and "sha256" in message
    assert not (project / "data" / "raw" / "uci_hapt_sample").exists()
    assert not any(p.name.startswith(".uci_hapt") for p in (project / "data" / "raw").iterdir())


def test_incomplete_mirror_exits_2(project: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(project / "sample" / "uci_hapt", mirror / "uci_hapt")
    proc = har_in_process("data", "fetch", "uci_hapt", "--mirror", str(mirror), cwd=project)
    assert proc.returncode == 2
    assert "missing" in one_line_error(proc)
    assert not (project / "data" / "raw" / "uci_hapt").exists()


def test_prepare_before_fetch_says_what_to_run(project: Path) -> None:
    proc = har_in_process("data", "prepare", "watch", cwd=project)
    assert proc.returncode == 2
    assert "har data fetch watch" in one_line_error(proc)


def test_mirror_env_var_is_used(project: Path) -> None:
    shared = REPO.parent / "shared" / "datasets"
    if not (shared / "watch").is_dir():
        pytest.skip(f"real datasets not found at {shared}")
    proc = har("data", "fetch", "watch", cwd=project, extra_env={"HAR_DATA_MIRROR": str(shared)})
    assert proc.returncode == 0, proc.stderr
    assert (project / "data/raw/watch").is_dir()


def test_error_messages_keep_their_brackets(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A message naming "[acc]" (a permutation) is printed as text, not taken as rich markup."""
    import har.cli
    from har.errors import HarError

    def fail() -> None:
        raise HarError("[acc] every trial failed (2 of 2); see [bold]tag har.error")

    monkeypatch.setattr(har.cli, "app", fail)
    with pytest.raises(SystemExit) as exit_:
        har.cli.main()
    assert exit_.value.code == 1
    assert (
        capsys.readouterr().err.strip() == "error: [acc] every trial failed (2 of 2); see [bold]tag har.error"
    )
