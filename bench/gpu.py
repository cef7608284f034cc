"""GPU training throughput of the product's trainer (``har.train.loop.fit``): windows per second of a few
architectures on CUDA in full precision and with ``amp``, beside the CPU, on a prepared dataset.

    python bench/gpu.py [--dataset uci_hapt_sample] [--epochs 3]     # writes bench/results/gpu.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from machine import cpu_name  # bench/ is on sys.path when run as a script
from report_sections import save_json

from har.models import build
from har.train.data import load_train_data
from har.train.loop import TrainConfig, fit

MODELS = {"cnn_resbigru": {}, "resnet1d": {}, "lstm": {}}
OUT = Path(__file__).resolve().parent / "results" / "gpu.json"


def windows_per_second(name: str, data, device: str, amp: bool, epochs: int) -> float:
    model = build(name, len(data.channels), len(data.classes), data.window, **MODELS[name])
    cfg = TrainConfig(max_epochs=epochs, patience=epochs + 1, device=device, amp=amp, batch_size=256)
    result = fit(model, data.splits["train"], data.splits["val"], data.classes, cfg)
    per_epoch = [row["epoch_seconds"] for row in result.history[1:]] or [result.history[0]["epoch_seconds"]]
    return len(data.splits["train"][1]) / (sum(per_epoch) / len(per_epoch))  # first epoch: warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="uci_hapt_sample")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data = load_train_data(args.prepared, args.dataset)
    cuda = torch.cuda.is_available()
    rows = []
    for name in MODELS:
        row = {"model": name, "cpu": round(windows_per_second(name, data, "cpu", False, args.epochs), 1)}
        if cuda:
            row["cuda"] = round(windows_per_second(name, data, "cuda", False, args.epochs), 1)
            row["cuda_amp"] = round(windows_per_second(name, data, "cuda", True, args.epochs), 1)
        rows.append(row)
        print(row, flush=True)
    save_json(args.out, {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpu": cpu_name(),
        "dataset": args.dataset, "batch_size": 256, "epochs": args.epochs,
        "unit": "training windows per second (epochs after the first)",
        "models": rows,
    })  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
