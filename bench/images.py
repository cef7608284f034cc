"""Benchmark: images per second of the image backbones on CPU (issue 7), training and inference.

For each backbone (resnet50 as published, resnet18, mobilenet_v3_small) at the published input (224 x 224,
22 classes), on synthetic images:

- data: JPEG decode + published training transform (crop, flip, rotation 35, normalisation), images/s in
  one process (what a data-loader worker delivers);
- training: forward + backward + Adam step, batch ``--batch``, fine-tuning every layer and with the
  backbone frozen (only the head trains), images/s on all threads;
- inference: images/s at batch ``--batch`` on all threads, and latency per image at batch 1 on one thread.

    python bench/images.py [--quick] [--batch N] [--steps N] [--size 224]

Writes bench/results/images.json and re-renders the docs from it (docs/render.py).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import cpu_name  # bench/machine.py (this folder is on sys.path when run as a script)
from report_sections import render_docs

from har.atomic import atomic_file
from har.models import build, count_parameters
from har.train.images import ImageSet

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "images.json"
BACKBONES = ("resnet50", "resnet18", "mobilenet_v3_small")
CLASSES = 22


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_set(n: int, size: int, crop: int) -> ImageSet:
    """``n`` random JPEG images of size x size packed as ``har data prepare`` packs them."""
    from PIL import Image

    from har.data.formats.image_folder import pack

    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(n):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            buffer, "JPEG", quality=95
        )
        blobs.append(buffer.getvalue())
    data, offsets = pack(blobs)
    return ImageSet(data, offsets, np.arange(n), crop)


def data_rate(size: int, crop: int, n: int = 64) -> float:
    images = synthetic_set(n, size, crop)
    torch.set_num_threads(1)
    seconds = timed(lambda: images.batch(range(n), "published"), 3)
    return n / seconds


def train_rate(name: str, crop: int, batch: int, steps: int, fine_tune: bool) -> float:
    model = build(name, 3, CLASSES, crop, fine_tune=fine_tune)
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.randn(batch, 3, crop, crop)
    y = torch.randint(0, CLASSES, (batch,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return batch / timed(step, steps)


def inference(name: str, crop: int, batch: int, steps: int) -> tuple[float, float, int]:
    model = build(name, 3, CLASSES, crop).eval()
    x = torch.randn(batch, 3, crop, crop)
    one = torch.randn(1, 3, crop, crop)
    with torch.inference_mode():
        rate = batch / timed(lambda: model(x), steps)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        latency = timed(lambda: model(one), max(5, steps))
        torch.set_num_threads(threads)
    return rate, 1000 * latency, count_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="112 x 112 crops, fewer steps (a smoke run)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--size", type=int, default=256, help="stored image size (crop: 224, or 112 with --quick)"
    )
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.report_only:
        render_docs()
        return
    crop = 112 if args.quick else 224
    size = min(args.size, 128) if args.quick else args.size
    steps = 1 if args.quick else args.steps
    threads = torch.get_num_threads()
    results: dict[str, Any] = {
        "size": size, "crop": crop, "batch": args.batch, "threads": threads,
        "machine": f"{cpu_name()} ({platform.machine()}, {os.cpu_count()} CPUs)",
        "data_images_per_s": round(data_rate(size, crop), 1), "backbones": {},
    }  # fmt: skip
    torch.set_num_threads(threads)
    for name in BACKBONES:
        rate, latency, params = inference(name, crop, args.batch, steps)
        row = {
            "parameters": params,
            "train_images_per_s": round(train_rate(name, crop, args.batch, steps, True), 2),
            "train_frozen_images_per_s": round(train_rate(name, crop, args.batch, steps, False), 2),
            "inference_images_per_s": round(rate, 2),
            "latency_ms": round(latency, 2),
        }
        results["backbones"][name] = row
        print(name, json.dumps(row), flush=True)
    results["load_average_after"] = os.getloadavg()[0]
    results["date"] = time.strftime("%Y-%m-%d %H:%M")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(RESULTS, "w") as handle:
        handle.write(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    if not args.quick:
        render_docs()


if __name__ == "__main__":
    main()
