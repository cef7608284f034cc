"""``har predict`` with an image model: one image, a folder of images, or a video, frame by frame.

Every image (or frame) is resized to the prepared size and centre-cropped exactly as validation images
were (``har.train.images.transform(crop, "none")``), then classified. A video also gets a smoothed label
track: class probabilities averaged over ``smooth`` neighbouring frames (centred), then the most likely
class, which removes single-frame flicker. Output: CSV or JSON (one row per image or frame) and, on
request, the video annotated with the smoothed label and its probability. Video is read and written
with OpenCV; nothing is written until every check has passed, and each file appears whole or not at all.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from scipy.ndimage import uniform_filter1d

from har.atomic import atomic_file
from har.data.formats.image_folder import IMAGE_SUFFIXES, open_rgb, squash
from har.errors import BadInput
from har.metrics import softmax
from har.predict.model import load_model
from har.predict.output import STDOUT, output_kind
from har.train.images import transform

# OpenCV with FFmpeg's and its own console logging off (errors reach the user as one line); read when cv2 loads
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
import cv2

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
VIDEO_CODECS = {".avi": "MJPG"}  # everything else: mp4v
BATCH = 32


def media_kind(path: Path) -> str:
    """``image``, ``folder`` or ``video``; anything else is an error naming the accepted inputs."""
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise BadInput(f"--input {path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise BadInput(
        f"--input {path}: an image model reads an image ({', '.join(IMAGE_SUFFIXES)}), a folder of images "
        f"or a video ({', '.join(VIDEO_SUFFIXES)}); got {suffix or 'no suffix'}"
    )


def folder_images(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BadInput(f"--input {folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return files


def read_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3]; an unreadable file is an error naming it."""
    return np.asarray(open_rgb(path))


class Video:
    """Frames of a video file as RGB arrays, with its rate and size (OpenCV)."""

    def __init__(self, path: Path):

        self.path = path
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise BadInput(f"--input {path}: not a readable video (OpenCV could not open it)")
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        ok, _ = capture.read()
        capture.release()
        if not ok:
            raise BadInput(f"--input {path}: the video has no readable frame")

    def frames(self) -> Iterator[np.ndarray]:

        capture = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


class Classifier:
    """A checkpoint's image model with its validation transform."""

    def __init__(self, model: Any, info: dict[str, Any]):

        image = info.get("image") or {}
        self.model, self.info = model, info
        self.size, self.crop = int(image.get("size", 256)), int(image.get("crop", info["window"]))
        self.transform = transform(self.crop, "none")

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """Class probabilities [N, K] of RGB uint8 images of any size."""

        if not images:
            return np.empty((0, len(self.info["classes"])))
        batch = []
        for rgb in images:  # as prepare: squash to size x size (bilinear), then the validation crop
            resized = np.asarray(squash(Image.fromarray(rgb), self.size))
            batch.append(self.transform(torch.from_numpy(resized).permute(2, 0, 1).contiguous()))
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            logits = self.model(torch.stack(batch).to(device)).float().cpu().numpy()
        return softmax(logits)


def smooth_probabilities(probabilities: np.ndarray, frames: int) -> np.ndarray:
    """Probabilities averaged over ``frames`` neighbouring frames (centred; edges repeat)."""
    if frames <= 1 or len(probabilities) < 2:
        return probabilities

    return uniform_filter1d(probabilities, size=frames, axis=0, mode="nearest")


@dataclass
class MediaPredictions:
    kind: str  # image | folder | video
    classes: list[str]
    names: list[str]  # file names (images) or frame numbers as text (video)
    probabilities: np.ndarray
    smoothed: np.ndarray | None = None  # video only
    fps: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def track(self) -> np.ndarray:
        """The label per frame after smoothing (the raw labels for images)."""
        return (self.smoothed if self.smoothed is not None else self.probabilities).argmax(axis=1)

    def frame(self) -> pd.DataFrame:
        classes = np.asarray(self.classes, dtype=object)
        if self.kind == "video":
            n = len(self.probabilities)
            table = pd.DataFrame(
                {"frame": np.arange(n), "time_s": np.round(np.arange(n) / (self.fps or 1), 4)}
            )
        else:
            table = pd.DataFrame({"file": self.names})
        table["label"] = classes[self.labels]
        table["probability"] = np.round(self.probabilities.max(axis=1), 6)
        if self.smoothed is not None:
            track = self.track()
            table["smoothed_label"] = classes[track]
            table["smoothed_probability"] = np.round(self.smoothed[np.arange(len(track)), track], 6)
        for k, name in enumerate(self.classes):
            table[f"p_{name}"] = np.round(self.probabilities[:, k], 6)
        return table

    def label_counts(self) -> dict[str, int]:
        counts = np.bincount(self.track(), minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True) if n}


def predict_media(classifier: Classifier, path: Path, smooth: int = 5) -> MediaPredictions:
    kind = media_kind(path)
    classes = list(classifier.info["classes"])
    if kind == "video":
        video = Video(path)
        chunks, pending = [], []
        for rgb in video.frames():
            pending.append(rgb)
            if len(pending) == BATCH:
                chunks.append(classifier.probabilities(pending))
                pending = []
        chunks.append(classifier.probabilities(pending))
        probs = np.concatenate(chunks)
        names = [str(i) for i in range(len(probs))]
        return MediaPredictions(kind, classes, names, probs, smooth_probabilities(probs, smooth), video.fps)
    files = [path] if kind == "image" else folder_images(path)
    images = [read_rgb(p) for p in files]  # every file is checked before any output
    probs = np.concatenate(
        [classifier.probabilities(images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
    )
    return MediaPredictions(kind, classes, [p.name for p in files], probs)


def default_output(path: Path) -> Path:
    """``<input stem>.predictions.csv`` beside the input (a folder: beside the folder)."""
    stem = path.name if path.is_dir() else path.stem
    return path.parent / f"{stem}.predictions.csv"


def write_table(pred: MediaPredictions, output: Path | str) -> None:
    kind = output_kind(output)
    if str(output) == STDOUT:
        pred.frame().to_csv(sys.stdout, index=False)
        return
    with atomic_file(Path(output), "w") as handle:
        if kind == "json":
            rows = pred.frame().to_dict(orient="records")
            key = "frames" if pred.kind == "video" else "images"
            handle.write(
                json.dumps({**pred.meta, "classes": pred.classes, key: rows}, indent=1, default=str) + "\n"
            )
        else:
            pred.frame().to_csv(handle, index=False)


def write_annotated(pred: MediaPredictions, source: Path, target: Path) -> int:
    """The input video with the smoothed label and its probability drawn on each frame; returns frames."""

    video = Video(source)
    suffix = target.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise BadInput(f"--video-out {target}: use a video suffix ({', '.join(VIDEO_SUFFIXES)})")
    tmp = target.with_name(f".{target.stem}.partial{suffix}")  # OpenCV picks the container by suffix
    fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS.get(suffix, "mp4v"))
    writer = cv2.VideoWriter(str(tmp), fourcc, video.fps, (video.width, video.height))
    if not writer.isOpened():
        raise BadInput(f"--video-out {target}: OpenCV cannot write this format here; try .avi")
    track = pred.track()
    smoothed = pred.smoothed if pred.smoothed is not None else pred.probabilities
    written = 0
    try:
        for i, rgb in enumerate(video.frames()):
            if i >= len(track):
                break
            frame = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            text = f"{pred.classes[track[i]]} {smoothed[i, track[i]]:.0%}"
            scale = max(0.4, video.height / 480)
            origin = (int(10 * scale), int(30 * scale))
            cv2.putText(
                frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), int(4 * scale), cv2.LINE_AA
            )
            cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(scale)),
                        cv2.LINE_AA)  # fmt: skip
            writer.write(frame)
            written += 1
        writer.release()
        os.replace(tmp, target)
    finally:
        writer.release()
        tmp.unlink(missing_ok=True)
    return written


def predict_media_file(
    folder: Path,
    reference: str,
    input_path: Path,
    output: Path | str | None = None,
    smooth: int = 5,
    video_out: Path | None = None,
    device: str = "cpu",
) -> tuple[MediaPredictions, Path | str]:
    """``har predict`` for an image model: check everything, classify, write the table (and video)."""

    input_path = Path(input_path)
    kind = media_kind(input_path)
    target: Path | str = default_output(input_path) if output is None else output
    output_kind(target)  # a bad suffix fails before the model loads
    if smooth < 1:
        raise BadInput(f"--smooth {smooth}: must be at least 1 frame")
    if video_out is not None:
        if kind != "video":
            raise BadInput(f"--video-out {video_out}: only a video input can be annotated (got an {kind})")
        if Path(video_out).suffix.lower() not in VIDEO_SUFFIXES:
            raise BadInput(f"--video-out {video_out}: use a video suffix ({', '.join(VIDEO_SUFFIXES)})")
        if Path(video_out).resolve() == input_path.resolve():
            raise BadInput(f"--video-out {video_out}: is the input video; choose another file")
    model, info = load_model(folder, device)
    pred = predict_media(Classifier(model, info), input_path, smooth)
    pred.meta = {
        "model": info["model"],
        "checkpoint": str(folder),
        "reference": reference,
        "dataset": info["dataset"],
        "input": str(input_path),
        "input_kind": kind,
        **({"fps": pred.fps, "smooth_frames": smooth} if kind == "video" else {}),
    }
    write_table(pred, target)
    if video_out is not None:
        write_annotated(pred, input_path, Path(video_out))
    return pred, target
