"""Synthetic images and videos that a model can really learn: one coloured shape per class (position,
size, shade and background noise vary), written in the Kaggle class-per-folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = {"red circle": (220, 40, 40), "green square": (40, 200, 60), "blue triangle": (50, 70, 230)}


def draw(cls: str, rng: np.random.Generator, size: int = 48) -> Image.Image:
    """One image of class ``cls``: its shape in its colour on a noisy grey background."""
    background = rng.integers(90, 160, (size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    pen = ImageDraw.Draw(image)
    shade = np.clip(np.array(SHAPES[cls]) + rng.integers(-25, 26, 3), 0, 255)
    colour = tuple(int(c) for c in shade)
    r = int(rng.integers(size // 5, size // 3))
    cx, cy = (int(v) for v in rng.integers(r + 2, size - r - 2, 2))
    if cls == "red circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif cls == "green square":
        pen.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        pen.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return image


def write_image_folder(root: Path, per_class: int = 24, seed: int = 0, size: int = 48) -> Path:
    """``root/<class>/<i>.jpg|png`` for every class of SHAPES."""
    rng = np.random.default_rng(seed)
    for cls in SHAPES:
        folder = root / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            suffix = ".png" if i % 3 == 0 else ".jpg"  # both formats, as real folders mix them
            draw(cls, rng, size).save(folder / f"{i:04d}{suffix}")
    return root


def write_video(
    path: Path, segments: list[tuple[str, int]], fps: float = 10.0, size: int = 64, seed: int = 1
) -> Path:
    """A video whose frames show the shapes of ``segments`` ([(class, frames), ...]) in order (OpenCV)."""
    import cv2

    rng = np.random.default_rng(seed)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (size, size))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for cls, frames in segments:
        for _ in range(frames):
            rgb = np.asarray(draw(cls, rng, size))
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
