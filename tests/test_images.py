"""Image datasets and models (issue 7): class-per-folder images prepared with a stored stratified split,
torchvision backbones with local pretrained weights, training that really learns synthetic shapes, and
``har predict`` on an image, a folder and a video (smoothed track, annotated video); bad input exits 2."""

from __future__ import annotations

import csv
import hashlib
import http.server
import itertools
import json
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from har.errors import BadInput, HarError
from tests.cli_helpers import REPO, har, har_in_process, one_line_error
from tests.synthetic_media import SHAPES, write_image_folder, write_video

CLASSES = sorted(SHAPES)
OPTIONS = {"size": 40, "crop": 32, "val_fraction": 0.2, "test_fraction": 0.2, "seed": 0}
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def image_project(root: Path, per_class: int = 24, name: str = "shapes") -> Path:
    """A scratch project whose params.yaml declares the synthetic shapes as an image dataset."""
    root.mkdir(parents=True, exist_ok=True)
    write_image_folder(root / "images", per_class=per_class)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"] = {name: {"format": "image_folder", "source": "images", "options": OPTIONS}}
    params["studies"] = {}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = image_project(tmp_path_factory.mktemp("images"))
    for step in (("data", "fetch", "shapes"), ("data", "prepare", "shapes")):
        proc = har(*step, cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root


def read_index(folder: Path) -> list[dict[str, str]]:
    with (folder / "index.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_prepare_stores_a_stratified_deterministic_split(project: Path, tmp_path: Path) -> None:
    folder = project / "data" / "prepared" / "shapes"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["kind"] == "images" and meta["classes"] == CLASSES
    assert meta["split"]["images"] == {"train": 42, "val": 15, "test": 15}  # 72 images; 20% / 20%, rounded up
    for part in ("train", "val", "test"):  # stratified: every class in every part, near-equal shares
        counts = meta["class_counts"][part]
        assert min(counts) >= 1 and max(counts) - min(counts) <= 1, (part, counts)
    rows = read_index(folder)
    assert len(rows) == 72 and {r["class"] for r in rows} == set(CLASSES)
    assert all(r["file"].split("/")[0] == r["class"] for r in rows)
    offsets = np.load(folder / "offsets.npy")
    assert offsets[0] == 0 and offsets[-1] == np.load(folder / "images.npy").size and len(offsets) == 73
    # the same files and options give the same split, in another project too
    again = image_project(tmp_path / "again")
    for step in (("data", "fetch", "shapes"), ("data", "prepare", "shapes")):
        assert har(*step, cwd=again).returncode == 0
    assert read_index(again / "data" / "prepared" / "shapes") == rows
    info = har("data", "info", "shapes", cwd=project)
    assert info.returncode == 0, info.stderr
    assert "images per class and split" in info.stdout and "blue triangle" in info.stdout
    listing = har("data", "list", cwd=project)
    assert "shapes" in listing.stdout and "images 32x32" in listing.stdout
    assert "workout_images" in listing.stdout


@pytest.mark.parametrize(
    "damage, named",
    [
        ("empty_class", "green square"),
        ("unreadable", "0001.jpg"),
        ("loose_file", "stray.jpg"),
        ("nested", "extra"),
        ("not_image", "notes.txt"),
    ],
)
def test_bad_image_folders_exit_2_naming_the_culprit(tmp_path: Path, damage: str, named: str) -> None:
    root = image_project(tmp_path, per_class=6)
    images = root / "images"
    if damage == "empty_class":
        for f in (images / "green square").iterdir():
            f.unlink()
    elif damage == "unreadable":
        (images / "red circle" / "0001.jpg").write_bytes(b"not a jpeg at all")
    elif damage == "loose_file":
        shutil.copy(images / "red circle" / "0001.jpg", images / "stray.jpg")
    elif damage == "nested":
        (images / "red circle" / "extra").mkdir()
    else:
        (images / "blue triangle" / "notes.txt").write_text("hello")
    assert har_in_process("data", "fetch", "shapes", cwd=root).returncode == 0
    proc = har_in_process("data", "prepare", "shapes", cwd=root)
    assert proc.returncode == 2
    assert named in one_line_error(proc)
    assert not (root / "data" / "prepared" / "shapes").exists()  # nothing half-written


def test_image_study_refuses_sensor_models_and_names_the_key(project: Path) -> None:
    study = project / "pipelines" / "bad.yaml"
    study.parent.mkdir(exist_ok=True)
    study.write_text(yaml.safe_dump({"dataset": "shapes", "permutations": ["rgb"], "models": {"lstm": {}}}))
    proc = har("tune", "--study", str(study), cwd=project)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "models.lstm" in line and "images" in line


# -- models and pretrained weights -------------------------------------------------------------------


def test_backbones_take_local_weights_checked_by_sha256(tmp_path: Path) -> None:
    from har.models import build, count_parameters

    donor = build("resnet18", 3, 10, 32)  # another head: 10 classes
    path = tmp_path / "resnet18.pth"
    torch.save(donor.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    model = build("resnet18", 3, 3, 32, weights=str(path), weights_sha256=digest)
    assert torch.equal(model.conv1.weight, donor.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_mean, donor.layer4[1].bn2.running_mean)
    assert model.fc.out_features == 3
    frozen = build("resnet18", 3, 3, 32, fine_tune=False, weights=str(path))
    assert [n for n, p in frozen.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    assert count_parameters(frozen) == 512 * 3 + 3
    with pytest.raises(BadInput, match="sha256 mismatch"):
        build("resnet18", 3, 3, 32, weights=str(path), weights_sha256="0" * 64)
    with pytest.raises(BadInput, match="do not fit"):
        build("mobilenet_v3_small", 3, 3, 32, weights=str(path))
    with pytest.raises(BadInput, match="needs weights_sha256"):
        build("resnet18", 3, 3, 32, weights="https://example.org/resnet18.pth")
    with pytest.raises(BadInput, match="RGB images"):
        build("resnet50", 9, 6, 128)


def test_weights_from_a_url_are_downloaded_once_and_verified(tmp_path: Path, monkeypatch) -> None:
    """A local HTTP server stands for the weights host (never the internet)."""
    from har.models import build

    served = tmp_path / "served"
    served.mkdir()
    donor = build("resnet18", 3, 5, 32)
    torch.save(donor.state_dict(), served / "r18.pth")
    digest = hashlib.sha256((served / "r18.pth").read_bytes()).hexdigest()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HAR_WEIGHTS_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{server.server_address[1]}/r18.pth"
    try:
        model = build("resnet18", 3, 3, 32, weights=url, weights_sha256=digest)
        assert torch.equal(model.conv1.weight, donor.conv1.weight)
        assert len(list((tmp_path / "cache").iterdir())) == 1
        with pytest.raises(BadInput, match="hash"):  # a file that is not the pinned one is refused
            build("resnet18", 3, 3, 32, weights=url, weights_sha256="1" * 64)
        with pytest.raises(HarError, match="download failed"):
            build("resnet18", 3, 3, 32, weights=url.replace("r18", "missing"), weights_sha256=digest)
    finally:
        server.shutdown()


# -- training and prediction -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(project: Path) -> tuple[Path, dict]:
    """resnet18 from scratch on the synthetic shapes (a few CPU seconds per epoch at 32 x 32)."""
    out = project / "runs" / "train" / "shapes-r18"
    proc = har(
        "train", "-d", "shapes", "-s", "rgb", "-m", "resnet18", "--epochs", "12", "--batch-size", "16",
        "--lr", "0.003", "--set", "patience=12", "--set", "image_augment=flip", "--out", str(out),
        cwd=project, extra_env=ONE_THREAD,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "training from scratch" in proc.stderr
    return out, json.loads((out / "checkpoint.json").read_text())


def test_training_learns_the_shapes(trained: tuple[Path, dict]) -> None:
    _, info = trained
    assert info["kind"] == "images" and info["image"] == {"size": 40, "crop": 32}
    assert info["classes"] == CLASSES and info["sensors"] == "rgb"
    assert info["metrics"]["test/accuracy"] >= 0.9, info["metrics"]


def test_image_training_is_deterministic(project: Path) -> None:
    from har.train.run import RunSpec, run

    spec = RunSpec(
        "shapes", "rgb", "mobilenet_v3_small", train={"max_epochs": 1, "batch_size": 16, "seed": 3}
    )
    prepared = project / "data" / "prepared"
    a, b = run(spec, prepared), run(spec, prepared)
    assert a.fit.history[0]["train/loss"] == b.fit.history[0]["train/loss"]
    assert a.val["val/loss"] == b.val["val/loss"]


def test_predict_an_image_a_folder_and_a_video(trained: tuple[Path, dict], tmp_path: Path) -> None:
    import cv2

    from tests.synthetic_media import draw

    checkpoint, _ = trained
    rng = np.random.default_rng(7)
    folder = tmp_path / "unseen"
    folder.mkdir()
    truth = {}
    for i, cls in enumerate(CLASSES * 3):
        name = f"{i:02d}.png"
        draw(cls, rng, 60).save(folder / name)  # another size than training: resized as prepare does
        truth[name] = cls
    one = har("predict", "--model", str(checkpoint), "--input", str(folder / "00.png"), cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    rows = list(csv.DictReader((folder / "00.predictions.csv").open()))
    assert len(rows) == 1 and rows[0]["file"] == "00.png"
    assert abs(sum(float(rows[0][f"p_{c}"]) for c in CLASSES) - 1) < 1e-4
    many = har("predict", "--model", str(checkpoint), "--input", str(folder), "-o", str(tmp_path / "f.json"),
               cwd=tmp_path)  # fmt: skip
    assert many.returncode == 0, many.stderr
    doc = json.loads((tmp_path / "f.json").read_text())
    hits = sum(row["label"] == truth[row["file"]] for row in doc["images"])
    assert len(doc["images"]) == 9 and hits >= 8, doc["images"]

    video = write_video(tmp_path / "clip.avi", [(CLASSES[0], 12), (CLASSES[2], 12), (CLASSES[1], 12)])
    annotated = tmp_path / "clip.annotated.mp4"
    proc = har("predict", "--model", str(checkpoint), "--input", str(video), "--smooth", "5",
               "--video-out", str(annotated), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames = list(csv.DictReader((tmp_path / "clip.predictions.csv").open()))
    assert len(frames) == 36 and frames[12]["time_s"] == "1.2"
    track = [f["smoothed_label"] for f in frames]
    expected = [CLASSES[0]] * 12 + [CLASSES[2]] * 12 + [CLASSES[1]] * 12
    assert sum(t == e for t, e in zip(track, expected, strict=True)) >= 33
    flips = lambda labels: sum(a != b for a, b in itertools.pairwise(labels))  # noqa: E731
    assert flips(track) <= flips([f["label"] for f in frames])  # smoothing never adds flicker
    capture = cv2.VideoCapture(str(annotated))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 36
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (64, 64, 3)
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize(
    "case, named",
    [
        ("suffix", "an image model reads"),
        ("empty_folder", "no image files"),
        ("broken_video", "not a readable video"),
        ("video_out_on_image", "only a video input"),
        ("broken_image", "unreadable image"),
        ("bad_smooth", "--smooth"),
        ("adapt", "image models have none"),
    ],
)
def test_predict_bad_media_exits_2(trained: tuple[Path, dict], tmp_path: Path, case: str, named: str) -> None:
    from tests.synthetic_media import draw

    checkpoint, _ = trained
    extra: list[str] = []
    if case == "suffix":
        target = tmp_path / "recording.csv"
        target.write_text("a,b\n1,2\n")
    elif case == "empty_folder":
        target = tmp_path / "nothing"
        target.mkdir()
    elif case == "broken_video":
        target = tmp_path / "broken.mp4"
        target.write_bytes(b"\x00" * 100)
    elif case == "broken_image":
        target = tmp_path / "bad.jpg"
        target.write_bytes(b"garbage")
    else:
        target = tmp_path / "ok.png"
        draw(CLASSES[0], np.random.default_rng(0), 40).save(target)
        extra = {
            "video_out_on_image": ["--video-out", str(tmp_path / "x.mp4")],
            "bad_smooth": ["--smooth", "0"],
            "adapt": ["--adapt"],
        }[case]
    # OpenCV's decoder may write to file descriptor 2 itself: only the console script sees that
    run = har if case == "broken_video" else har_in_process
    proc = run("predict", "--model", str(checkpoint), "--input", str(target), *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert named in one_line_error(proc)
    assert not list(tmp_path.glob("*.predictions.*")) and not (tmp_path / "x.mp4").exists()


def test_the_split_is_a_dvc_output_that_a_param_change_reproduces(tmp_path: Path) -> None:
    """prepare@<images> in a temporary git + DVC repo: the stored split is versioned by dvc.lock, a
    no-op repro keeps it, and another split seed re-runs prepare (not fetch) and moves images."""
    from tests.test_dvc import commit_project, dvc, ran

    repo = image_project(tmp_path / "repo", per_class=8)
    shutil.copy(REPO / "dvc.yaml", repo / "dvc.yaml")
    for folder in ("har", "sample"):
        shutil.copytree(REPO / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    commit_project(repo)
    assert ran(dvc("repro", "prepare@shapes", cwd=repo)) == {"fetch@shapes", "prepare@shapes"}
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["prepare@shapes"]
    assert [o["path"] for o in lock["outs"]] == ["data/prepared/shapes"]
    first = read_index(repo / "data" / "prepared" / "shapes")
    assert ran(dvc("repro", "prepare@shapes", cwd=repo)) == set()
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"]["shapes"]["options"]["seed"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert ran(dvc("repro", "prepare@shapes", cwd=repo)) == {"prepare@shapes"}
    second = read_index(repo / "data" / "prepared" / "shapes")
    assert sorted(r["file"] for r in first) == sorted(r["file"] for r in second)
    assert [r["split"] for r in first] != [r["split"] for r in second]


def test_evaluate_an_image_checkpoint(trained: tuple[Path, dict], project: Path) -> None:
    out, info = trained
    proc = har("evaluate", str(out), "--split", "test", cwd=project, extra_env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(15 images)" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if re.search(r"│\s+[01]\.\d{4}\s+│", line))
    accuracy = float(row.split("│")[1])
    assert accuracy == pytest.approx(info["metrics"]["test/accuracy"], abs=5e-5)
    proc = har_in_process("evaluate", str(out), str(out), cwd=project, extra_env=ONE_THREAD)
    assert proc.returncode == 2 and "ensembles are of sensor models" in one_line_error(proc)
