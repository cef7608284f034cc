"""Image datasets for training: the prepared packed JPEGs, decoded and transformed batch by batch.

``ImageSet`` stands where sensor datasets have an array of windows: ``len``, slicing (evaluation
batches: the published validation transform, as numpy) and ``batch(indices, augment)`` (training
batches with augmentation, as a tensor), so ``har.train.loop.fit`` and ``evaluate`` treat both alike.
Augmentation levels (``TrainConfig.image_augment``):

- ``none``: centre crop only (the validation transform);
- ``flip``: + horizontal flip (p = 0.5);
- ``published``: + random rotation of up to 35 degrees (the tutorial's training transform);
- ``strong``: random resized crop (60-100% of the area) instead of the centre crop, + flip, rotation
  and colour jitter (0.3).

All follow the published pipeline: resize to 256 x 256 (done once by ``har data prepare``), crop 224,
ImageNet normalisation. Random draws come from torch's generator, so a seeded run is repeatable.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from har.data.formats.image_folder import IMAGENET_MEAN, IMAGENET_STD, TEST, TRAIN, VAL
from har.errors import BadInput
from har.train.dataset import TrainData, data_version

AUGMENT_LEVELS = ("none", "flip", "published", "strong")


def transform(crop: int, augment: str = "none"):
    """The torchvision (v2) transform of a decoded uint8 image [3, S, S] to a normalised float tensor."""
    # deferred: importing torchvision loads torch._dynamo (about 2 s), which only image data needs
    from torchvision.transforms import v2

    if augment not in AUGMENT_LEVELS:
        raise BadInput(f"image augmentation {augment!r}: choose one of {', '.join(AUGMENT_LEVELS)}")
    steps: list[Any] = [v2.RandomResizedCrop(crop, scale=(0.6, 1.0), antialias=True)] if augment == "strong" \
        else [v2.CenterCrop(crop)]  # fmt: skip
    if augment in ("flip", "published", "strong"):
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if augment in ("published", "strong"):
        steps.append(v2.RandomRotation(35))
    if augment == "strong":
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)


def decode(blob: np.ndarray) -> torch.Tensor:
    """One packed JPEG -> uint8 tensor [3, H, W] (Pillow's libjpeg-turbo; torchvision's decoder is
    deprecated in favour of torchcodec, which the pinned stack does not include)."""

    with Image.open(io.BytesIO(blob.tobytes())) as image:
        rgb = np.array(image.convert("RGB"))  # writable: torch shares its memory
    return torch.from_numpy(rgb).permute(2, 0, 1)


class ImageSet:
    """The images of one split: packed JPEGs (shared, never copied) and the positions of this split."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray, positions: np.ndarray, crop: int):
        self.data, self.offsets, self.positions, self.crop = data, offsets, positions, crop
        self._transforms: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), 3, self.crop, self.crop)

    def image(self, i: int) -> torch.Tensor:
        """Decoded image ``i`` of this split, uint8 [3, S, S]."""
        p = int(self.positions[i])
        return decode(self.data[self.offsets[p] : self.offsets[p + 1]])

    def batch(self, indices, augment: str = "none") -> torch.Tensor:
        """Images ``indices`` (of this split) through the transform of ``augment``: float [B, 3, crop, crop]."""
        if augment not in self._transforms:
            self._transforms[augment] = transform(self.crop, augment)
        chosen = self._transforms[augment]
        return torch.stack([chosen(self.image(int(i))) for i in indices])

    def __getitem__(self, index) -> np.ndarray:
        """Evaluation batches (no augmentation) as float32 numpy: ``images[i:j]``, ``images[[...]]``."""
        if isinstance(index, slice):
            index = range(*index.indices(len(self)))
        elif isinstance(index, int | np.integer):
            return self.batch([int(index)]).numpy()[0]
        return self.batch(list(index)).numpy()

    def loader(
        self, batches: list[torch.Tensor], augment: str, workers: int, seed: int
    ) -> Iterator[torch.Tensor]:
        """Training batches in the given order, decoded by ``workers`` processes (0: in this process)."""
        if workers == 0:
            for idx in batches:
                yield self.batch(idx.tolist(), augment)
            return

        loader = DataLoader(
            _Batches(self, [b.tolist() for b in batches], augment),
            batch_size=None,
            num_workers=workers,
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=False,
        )
        yield from loader


class _Batches(torch.utils.data.Dataset):
    def __init__(self, images: ImageSet, batches: list[list[int]], augment: str):
        self.images, self.batches, self.augment = images, batches, augment

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images.batch(self.batches[i], self.augment)


def is_image_folder(folder: Path) -> bool:
    return (folder / "offsets.npy").is_file() and (folder / "images.npy").is_file()


def load_image_data(prepared_dir: Path, dataset: str, sensors: str = "rgb"):
    """A ``TrainData`` whose splits are ``(ImageSet, labels)``: the prepared stratified split as stored."""

    folder = prepared_dir / dataset
    meta = json.loads((folder / "meta.json").read_text())
    if sensors not in ("all", "rgb"):
        raise BadInput(f"sensors {sensors!r}: image dataset {dataset!r} has one permutation, rgb")
    try:
        data = np.load(folder / "images.npy")  # one read; the array then travels to trials without copies
        offsets = np.load(folder / "offsets.npy")
        y = np.load(folder / "y.npy").astype(np.int64)
        split = np.load(folder / "split.npy")
    except (OSError, ValueError) as exc:
        raise BadInput(
            f"{folder}: incomplete image dataset ({exc}); run 'har data prepare {dataset}' again"
        ) from exc
    crop = int(meta["image"]["crop"])
    parts = {"train": TRAIN, "val": VAL, "test": TEST}
    splits = {}
    for name, code in parts.items():
        positions = np.flatnonzero(split == code)
        splits[name] = (ImageSet(data, offsets, positions, crop), y[positions])
    return TrainData(
        dataset=dataset,
        sensors="rgb",
        channels=list(meta["channels"]),
        classes=list(meta["classes"]),
        window=crop,
        rate_hz=0.0,
        mean=np.asarray(IMAGENET_MEAN, dtype=np.float32),
        std=np.asarray(IMAGENET_STD, dtype=np.float32),
        splits=splits,
        val_subjects=[],
        val_missing=[],
        data_version=data_version(folder, ("y.npy", "split.npy")),
        reader_options={"size": int(meta["image"]["size"]), "crop": crop},
        kind="images",
    )
