"""Benchmark: `prepare uci_hapt` from raw files, and reading the raw files our way vs the notebooks' way.

The source notebooks load each text file with ``pandas.read_csv(path, header=None, delim_whitespace=True)``
(``sep=r"\\s+"`` since pandas 2.2). har-lab parses with pandas' C engine on a single-space separator and
reads experiments in a thread pool. Target: the full UCI HAPT prepare under 20 s on 2 cores.

    python bench/prepare.py [--mirror DIR] [--repeats 3]

Writes bench/results/prepare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from har.atomic import atomic_file
from har.data.fetch import fetch
from har.data.formats.uci_hapt import RAW_NAME, raw_dir, read_experiment, read_labels
from har.data.prepare import prepare
from har.data.prepared import load_prepared
from har.data.registry import BUILTIN

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "prepare.json"
UCI_HAR = {"train": 7352, "test": 2947}


def timed(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), [round(t, 3) for t in times]


def read_ours(folder: Path) -> int:
    labels = read_labels(folder)
    experiments = sorted({(int(e), int(u)) for e, u in labels[:, :2]})
    with ThreadPoolExecutor(max_workers=4) as pool:
        arrays = list(pool.map(lambda eu: read_experiment(folder, *eu), experiments))
    return sum(a.size + g.size for a, g in arrays)


def read_naive(folder: Path) -> int:
    total = 0
    for path in sorted(folder.iterdir()):
        if RAW_NAME.match(path.name) or path.name.startswith("gyro_exp") or path.name.startswith("labels"):
            total += pd.read_csv(path, header=None, sep=r"\s+").to_numpy().size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_mirror = os.environ.get("HAR_DATA_MIRROR", str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--mirror", type=Path, default=Path(default_mirror))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (args.mirror / "uci_hapt").is_dir():
        sys.exit(f"error: {args.mirror / 'uci_hapt'} not found; pass --mirror with a UCI HAPT copy")

    spec = BUILTIN["uci_hapt"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        start = time.perf_counter()
        raw = fetch(spec, tmp_path / "raw", mirror=args.mirror, show_progress=False)
        fetch_s = time.perf_counter() - start
        folder = raw_dir(raw)
        ours_s, ours_all = timed(lambda: read_ours(folder), args.repeats)
        naive_s, naive_all = timed(lambda: read_naive(folder), args.repeats)
        assert read_ours(folder) + read_labels(folder).size == read_naive(folder), "readers disagree"
        prep_s, prep_all = timed(lambda: prepare(spec, raw, tmp_path / "prepared"), args.repeats)
        data = load_prepared(tmp_path / "prepared" / "uci_hapt")
        # the whole command as a user runs it, interpreter start-up and imports included
        project = tmp_path / "project"
        (project / "data" / "raw").mkdir(parents=True)
        (project / "data" / "raw" / "uci_hapt").symlink_to(raw)
        cli = [str(Path(sys.executable).parent / "har"), "data", "prepare", "uci_hapt"]
        cli_s, cli_all = timed(
            lambda: subprocess.run(cli, cwd=project, check=True, capture_output=True), args.repeats
        )

    windows = {"train": int((~data.test).sum()), "test": int(data.test.sum())}
    result = {
        "benchmark": "prepare uci_hapt (full UCI HAPT v2.1 RawData, 61 experiments)",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "platform": platform.platform(),
        },
        "repeats": args.repeats,
        "fetch_from_mirror_s": round(fetch_s, 3),
        "raw_read_ours_s": round(ours_s, 3),
        "raw_read_ours_runs_s": ours_all,
        "raw_read_naive_read_csv_s": round(naive_s, 3),
        "raw_read_naive_runs_s": naive_all,
        "raw_read_speedup": round(naive_s / ours_s, 2),
        "prepare_s": round(prep_s, 3),
        "prepare_runs_s": prep_all,
        "cli_prepare_s": round(cli_s, 3),
        "cli_prepare_runs_s": cli_all,
        "target_prepare_s": 20.0,
        "meets_target": cli_s < 20.0 and prep_s < 20.0,
        "windows": windows,
        "uci_har_windows": UCI_HAR,
        "windows_vs_uci_har_pct": {k: round(100 * (windows[k] / UCI_HAR[k] - 1), 2) for k in UCI_HAR},
        "shape": list(data.X.shape),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(RESULTS, "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    for key in (
        "raw_read_ours_s",
        "raw_read_naive_read_csv_s",
        "raw_read_speedup",
        "prepare_s",
        "cli_prepare_s",
    ):
        print(f"{key:28s} {result[key]}")
    print(f"windows {windows} vs UCI HAR {UCI_HAR}: {result['windows_vs_uci_har_pct']} %")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
