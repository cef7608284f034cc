"""Images in class-per-folder layout (the Kaggle "Workout/Exercise Images" layout)::

    root/
      barbell biceps curl/  0001.jpg 0002.jpg ...
      bench press/          ...

One folder per class, named as the class; images directly inside (no nesting, no loose files beside
the class folders). A single wrapping folder (``root/archive/<classes>``, as archives often extract) is
descended into. Preparing decodes every image once (an unreadable one is an error naming it), resizes
it to ``size`` x ``size`` (the published ``Resize((256, 256))``) and stores it re-encoded as JPEG in one
packed array, so trials decode small images and the prepared folder travels through Ray's object store.
The train / validation / test split is stratified by class and seeded: the same files and options
always give the same split. Nothing here imports torch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.model_selection import train_test_split

from har.errors import BadInput

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TRAIN, TEST, VAL = 0, 1, 2  # split.npy codes (1 = test, as for sensor datasets)
PART_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CHANNELS = ["red", "green", "blue"]
GROUPS = {"rgb": CHANNELS}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(256, ge=16, le=2048, description="images are resized to size x size when prepared")
    crop: int = Field(224, ge=16, description="centre crop fed to the model (its input size)")
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    seed: int = Field(0, description="seed of the stratified split")
    quality: int = Field(95, ge=50, le=100, description="JPEG quality of the stored, resized images")
    min_per_class: int = Field(3, ge=3, description="fewer images in a class is an error")

    @model_validator(mode="after")
    def _crop_fits(self) -> Options:
        if self.crop > self.size:
            raise ValueError(f"crop {self.crop} is larger than size {self.size}")
        return self


@dataclass
class Listing:
    root: Path  # the folder holding the class folders
    classes: list[str]
    files: list[Path]
    labels: np.ndarray  # int64 class index per file


def class_root(root: Path) -> Path:
    """``root`` or the single folder wrapping the class folders (``archive/`` of a Kaggle zip)."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if not p.name.startswith(".")]
        if inner and all(p.is_dir() for p in inner):
            return entries[0]
    return root


def list_images(root: Path, expected: list[str] | None = None, min_per_class: int = 3) -> Listing:
    """Class folders and their images, checked: a mixed layout, a nested or empty class folder, a
    file that is not an image, or (for a published dataset) a missing or unexpected class is an error."""
    if not root.is_dir():
        raise BadInput(f"{root}: not found; run 'har data fetch' for this dataset first")
    base = class_root(root)
    entries = sorted(p for p in base.iterdir() if not p.name.startswith("."))
    loose = [p for p in entries if p.is_file()]
    if loose:
        raise BadInput(
            f"{loose[0]}: a file beside the class folders (mixed layout); an image dataset holds one folder "
            "per class with the images inside: move the file into its class folder or remove it"
        )
    folders = [p for p in entries if p.is_dir()]
    if len(folders) < 2:
        raise BadInput(f"{base}: found {len(folders)} class folder(s); an image dataset needs one folder per "
                       "class and at least 2 classes")  # fmt: skip
    classes = [p.name for p in folders]
    if expected:
        missing = sorted(set(expected) - set(classes))
        extra = sorted(set(classes) - set(expected))
        if missing or extra:
            what = f"missing class folder {missing[0]!r}" if missing else f"unexpected folder {extra[0]!r}"
            raise BadInput(f"{base}: {what} (the dataset has {len(expected)} classes: {', '.join(expected[:5])}, "
                           "...); fetch the dataset again or fix the folder")  # fmt: skip
        classes = list(expected)
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        folder = base / name
        members = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        nested = [p for p in members if p.is_dir()]
        if nested:
            raise BadInput(f"{nested[0]}: a folder inside class folder {name!r} (mixed layout); keep the "
                           "images of a class directly in its folder")  # fmt: skip
        other = [p for p in members if p.suffix.lower() not in IMAGE_SUFFIXES]
        if other:
            raise BadInput(f"{other[0]}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)}); "
                           "remove it or convert it")  # fmt: skip
        if len(members) < min_per_class:
            raise BadInput(f"{folder}: class {name!r} has {len(members)} image(s); each class needs at least "
                           f"{min_per_class} (train, validation and test each get one): add images or remove "
                           "the folder")  # fmt: skip
        files.extend(members)
        labels.extend([index] * len(members))
    return Listing(base, classes, files, np.asarray(labels, dtype=np.int64))


def stratified_split(labels: np.ndarray, options: Options) -> np.ndarray:
    """A seeded, class-stratified split code per image (TRAIN / VAL / TEST); every class lands in all three."""

    index = np.arange(len(labels))
    rest, test = train_test_split(
        index, test_size=options.test_fraction, stratify=labels, random_state=options.seed
    )
    val_share = options.val_fraction / (1 - options.test_fraction)
    _, val = train_test_split(rest, test_size=val_share, stratify=labels[rest], random_state=options.seed)
    split = np.full(len(labels), TRAIN, dtype=np.uint8)
    split[val] = VAL
    split[test] = TEST
    for code, name in PART_NAMES.items():
        empty = [c for c in np.unique(labels) if not np.any((labels == c) & (split == code))]
        if empty:
            raise BadInput(f"class index {empty[0]} has no {name} image with val_fraction {options.val_fraction} "
                           f"and test_fraction {options.test_fraction}; add images or raise the fractions")  # fmt: skip
    return split


def open_rgb(path: Path):
    """The image at ``path`` as an RGB Pillow image; an unreadable or empty file is an error naming it."""

    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"{path}: unreadable image ({exc}); remove or replace the file") from exc
    if rgb.width < 1 or rgb.height < 1:
        raise BadInput(f"{path}: empty image; remove or replace the file")
    return rgb


def squash(rgb, size: int):
    """Resize to size x size, ignoring the aspect ratio (the published ``Resize((256, 256))``), bilinear."""

    return rgb.resize((size, size), Image.Resampling.BILINEAR)


def resized_jpeg(path: Path, size: int, quality: int) -> bytes:
    """The image at ``path`` as RGB, resized to size x size, JPEG-encoded."""
    buffer = io.BytesIO()
    squash(open_rgb(path), size).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def pack(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Encoded images -> one uint8 array and int64 offsets [N + 1] (image i = data[off[i]:off[i+1]])."""
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    return data, offsets
