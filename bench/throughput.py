"""Benchmark: CPU training/inference throughput of every model zoo architecture, and CPU optimisations.

For each registered model at its published preset, on synthetic float32 windows (UCI HAR shape 128 x 9,
6 classes by default): training windows/s (forward + backward + Adam step, batch 64), inference latency per
window at batch 1 on one thread, inference windows/s at batch 256 on all threads, parameter count. Then it
measures (without changing model code) what the usual CPU optimisations do: ``torch.compile`` (default
inductor backend), channels-last (only meaningful for 2D convolutions), the oneDNN fused LSTM kernel
against the ATen kernel and a Python loop of ``nn.LSTMCell``, oneDNN convolutions, one thread against
all threads, and ``torch.inference_mode()`` against ``torch.no_grad()``.

Timings are wall-clock on whatever CPU runs this; on a small shared machine they are noisy, and they
depend on what ran before in the process: on 2026-11-30 the LSTMs trained 30-50% slower when timed after
resnet1d and inception than before them (same run otherwise), and a model timed first in a fresh
process ran slower still, so models are timed in the zoo's order in one process. A/B
comparisons are interleaved and judged on both the median and the best run, against ``--threshold``.
The CPU time other processes used during each section is recorded (/proc/stat, PSI): with another job
on one of two cores, multi-threaded PyTorch runs can be tens of times slower than on an idle machine.

    python bench/throughput.py [--quick] [--shape T C K] [--steps N] [--threads N] [--compile SPEC ...]

Writes bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import cpu_name  # bench/machine.py (this folder is on sys.path when run as a script)
from report_sections import render_docs
from torch import nn

from har.atomic import atomic_file
from har.errors import BadInput
from har.models import build, count_parameters, entry, model_names
from har.train.loop import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "throughput.json"
UCI_HAR_SHAPE = (128, 9, 6)
UCI_HAR_TRAIN_WINDOWS = 7352
# the published configuration of each architecture (models missing here fall back to their first preset)
MAIN_PRESETS = {
    "lstm": ["chevalier"],
    "res_bilstm": ["3x3", "3x3_readme"],
    "lstm_dense": ["tutorial"],
    "cnn_lstm": ["tutorial"],
    "convlstm": ["tutorial"],
    "cnn_resbigru": ["model1", "model2", "model3", "model4"],
    "deepconvlstm": ["ordonez"],
    "resnet1d": ["wang2017", "pooled_stats"],
}
QUICK_PRESETS = {"cnn_resbigru": ["model2"]}
FULL = {"steps": 5, "warmup": 2, "latency_calls": 30, "repeats": 3}
QUICK = {"steps": 2, "warmup": 1, "latency_calls": 10, "repeats": 2}
FULL_COMPILE = ["resnet1d:wang2017", "convlstm:tutorial", "lstm_dense:tutorial"]
QUICK_COMPILE = ["lstm:chevalier"]
FULL_COMPILE_TRAIN = ["convlstm:tutorial"]

warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")


# --------------------------------------------------------------------------- timing helpers


def stats(times: list[float], batch: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "windows_per_s": round(batch / median, 1),
        "median_s": round(median, 5),
        "min_s": round(min(times), 5),
        "runs": len(times),
        "spread_pct": round(100 * (max(times) - min(times)) / median, 1),
    }


def interleaved(fns: dict[str, Callable[[], Any]], n: int, warmup: int) -> dict[str, list[float]]:
    """Time each function ``n`` times, alternating the order every round so drift hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    items = list(fns.items())
    for i in range(n):
        for key, fn in items if i % 2 == 0 else reversed(items):
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return times


def verdict(base: dict[str, Any], variant: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Speed-up of ``variant`` over ``base`` (>1: variant faster), judged on median and best run."""
    by_median = base["median_s"] / variant["median_s"]
    by_min = base["min_s"] / variant["min_s"]
    if by_median >= 1 + threshold and by_min >= 1 + threshold:
        word = "helps"
    elif by_median <= 1 / (1 + threshold) and by_min <= 1 / (1 + threshold):
        word = "hurts"
    else:
        word = f"no clear difference (within ±{threshold:.0%})"
    return {"speedup_median": round(by_median, 3), "speedup_best": round(by_min, 3), "verdict": word}


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """The profiler's C++ side prints start/stop lines on fd 2; hide them."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# --------------------------------------------------------------------------- workloads


def make_model(spec: str, shape: tuple[int, int, int], seed: int) -> nn.Module:
    name, _, preset_name = spec.partition(":")
    hparams = entry(name).presets[preset_name].hparams if preset_name else {}
    torch.manual_seed(seed)
    return build(name, shape[1], shape[2], shape[0], **hparams)


def train_step(model: nn.Module, batch: int, shape: tuple[int, int, int], lr: float) -> Callable[[], None]:
    """One forward + backward + Adam step on a fixed synthetic batch (the model in training mode)."""
    T, C, K = shape
    x, y = torch.randn(batch, T, C), torch.randint(0, K, (batch,))
    cfg = TrainConfig(lr=lr)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def infer(model: nn.Module, x: torch.Tensor, mode: str = "inference_mode") -> Callable[[], torch.Tensor]:
    model.eval()
    ctx = torch.inference_mode if mode == "inference_mode" else torch.no_grad

    def call() -> torch.Tensor:
        with ctx():
            return model(x)

    return call


def measure_model(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    shape = tuple(args.shape)
    model = make_model(spec, shape, args.seed)
    name, _, preset_name = spec.partition(":")
    lr = entry(name).presets[preset_name].train.get("lr", 1e-3) if preset_name else 1e-3
    row: dict[str, Any] = {"spec": spec, "params": count_parameters(model)}
    kinds = {type(m).__name__ for m in model.modules()}
    row["layers"] = sorted(kinds & {"Conv1d", "Conv2d", "LSTM", "GRU", "LSTMCell", "ConvLSTMCell"})

    # training
    step = train_step(model, args.batch, shape, lr)
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times = interleaved({"train": step}, args.steps, max(args.warmup - 1, 0))["train"]
    row["train"] = {
        **stats(times, args.batch),
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "first_step_s": round(first, 4),
    }

    # batch-1 latency on one thread, inference_mode vs no_grad interleaved call by call
    x1 = torch.randn(1, *shape[:2])
    with threads(1):
        t = interleaved(
            {"inference_mode": infer(model, x1), "no_grad": infer(model, x1, "no_grad")},
            args.latency_calls,
            3,
        )
    lat = {k: sorted(v) for k, v in t.items()}
    row["latency_b1"] = {
        "threads": 1,
        "median_ms": round(1000 * statistics.median(lat["inference_mode"]), 3),
        "p90_ms": round(1000 * lat["inference_mode"][int(0.9 * (len(lat["inference_mode"]) - 1))], 3),
        "min_ms": round(1000 * lat["inference_mode"][0], 3),
        "calls": len(lat["inference_mode"]),
        "no_grad_median_ms": round(1000 * statistics.median(lat["no_grad"]), 3),
    }
    b1 = {k: stats(v, 1) for k, v in t.items()}

    # batch-256 throughput on all threads
    xb = torch.randn(args.infer_batch, *shape[:2])
    t = interleaved(
        {"inference_mode": infer(model, xb), "no_grad": infer(model, xb, "no_grad")}, args.repeats, 1
    )
    big = {k: stats(v, args.infer_batch) for k, v in t.items()}
    row["inference"] = {
        **big["inference_mode"],
        "batch": args.infer_batch,
        "threads": torch.get_num_threads(),
    }
    row["inference_mode_vs_no_grad"] = {
        "batch_1": verdict(b1["no_grad"], b1["inference_mode"], args.threshold),
        f"batch_{args.infer_batch}": {
            **verdict(big["no_grad"], big["inference_mode"], args.threshold),
            "no_grad_windows_per_s": big["no_grad"]["windows_per_s"],
        },
    }
    if "Conv2d" in kinds:
        row["channels_last"] = "measured (2D convolutions): see optimisations.channels_last"
    elif "Conv1d" in kinds or "ConvLSTMCell" in kinds:
        row["channels_last"] = "n/a: 1D convolutions (channels_last is a 4D NCHW layout)"
    else:
        row["channels_last"] = "n/a: no convolutions"
    return row


# --------------------------------------------------------------------------- optimisations


def dynamo_stats() -> dict[str, Any]:
    """Graphs Dynamo captured, graph breaks, and what it refused (first line of each reason)."""
    try:
        from torch._dynamo.utils import counters

        return {
            "graphs": int(counters["stats"].get("unique_graphs", 0)),
            "graph_breaks": int(sum(counters["graph_break"].values())),
            "unsupported": sorted({k.splitlines()[0] for k in counters["unimplemented"]}),
        }
    except Exception:
        return {}


def reset_dynamo() -> None:
    torch._dynamo.reset()
    with contextlib.suppress(Exception):
        from torch._dynamo.utils import counters

        counters.clear()


def compile_init() -> dict[str, Any]:
    """Compile a trivial function first so that inductor's one-time start-up is not charged to a model."""
    reset_dynamo()
    start = time.perf_counter()
    try:
        torch.compile(lambda t: t.relu() + 1)(torch.randn(8))
        return {"status": "ok", "seconds": round(time.perf_counter() - start, 2)}
    except Exception as exc:
        return {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    finally:
        reset_dynamo()


def compiled_run(
    spec: str, args: argparse.Namespace, training: bool, allow_rnn: bool = False
) -> dict[str, Any]:
    """Eager vs ``torch.compile`` (default backend) of one model; the first compiled call is the compile."""
    shape = tuple(args.shape)
    eager = make_model(spec, shape, args.seed)
    twin = copy.deepcopy(eager)
    batch = args.batch if training else args.infer_batch
    xb = torch.randn(batch, *shape[:2])
    reset_dynamo()
    start = time.perf_counter()
    try:
        with torch._dynamo.config.patch(allow_rnn=allow_rnn):
            compiled = torch.compile(twin)
            if training:
                fns = {
                    "eager": train_step(eager, batch, shape, 1e-3),
                    "compiled": train_step(compiled, batch, shape, 1e-3),
                }
            else:
                fns = {"eager": infer(eager, xb), "compiled": infer(compiled, xb)}
            fns["compiled"]()
            compile_s = time.perf_counter() - start
            diff = None
            if not training:
                diff = float((fns["compiled"]() - fns["eager"]()).abs().max())
            t = interleaved(fns, max(args.steps if training else args.repeats, 3), 1)
    except Exception as exc:
        return {
            "status": "failed",
            "error": f"{type(exc).__name__}: {str(exc)[:300]}",
            "seconds_before_failure": round(time.perf_counter() - start, 2),
        }
    finally:
        dyn = dynamo_stats()
        reset_dynamo()
    s = {k: stats(v, batch) for k, v in t.items()}
    compiled_ok = bool(dyn.get("graphs", 1))
    judged = verdict(s["eager"], s["compiled"], args.threshold)
    if not compiled_ok:
        judged["verdict"] = "n/a: nothing compiled, both sides ran eager"
    return {
        "status": "ok" if compiled_ok else "not compiled: Dynamo fell back to eager",
        "workload": (
            f"training step batch {batch} (model compiled, Adam eager)"
            if training
            else f"inference batch {batch}, inference_mode"
        ),
        "allow_rnn": allow_rnn,
        "compile_s": round(compile_s, 2),
        **dyn,
        "max_abs_diff": diff,
        "eager_windows_per_s": s["eager"]["windows_per_s"],
        "compiled_windows_per_s": s["compiled"]["windows_per_s"],
        **judged,
    }


def compile_model(spec: str, args: argparse.Namespace, training: bool) -> dict[str, Any]:
    """Compile; where Dynamo refuses the RNN modules, also try its experimental ``allow_rnn`` tracing."""
    result = compiled_run(spec, args, training)
    if result["status"] != "ok" and any("RNN" in u for u in result.get("unsupported", [])):
        if training:  # inductor then compiles the unrolled forward + backward time loop: > 10 min in a trial
            result["with_allow_rnn"] = "not tried for training (compiling the unrolled loop takes minutes)"
        else:
            result["with_allow_rnn"] = compiled_run(spec, args, training, allow_rnn=True)
    return result


def op_names(fn: Callable[[], Any]) -> set[str]:
    from torch.profiler import ProfilerActivity, profile

    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages()}


def rnn_paths(shape: tuple[int, int, int]) -> dict[str, Any]:
    """Which kernel nn.LSTM / nn.GRU dispatch to on this CPU, read from the profiler's op names."""
    x = torch.randn(4, shape[0], shape[1])
    out: dict[str, Any] = {
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "mkldnn_enabled": torch.backends.mkldnn.enabled,
    }
    for cls in (nn.LSTM, nn.GRU):
        rnn = cls(shape[1], 16, batch_first=True)

        def fwd(rnn: nn.Module = rnn) -> None:
            with torch.inference_mode():
                rnn(x)

        def fwd_bwd(rnn: nn.Module = rnn) -> None:
            rnn(x)[0].sum().backward()

        entry_: dict[str, Any] = {}
        for label, fn in (("inference", fwd), ("training", fwd_bwd)):
            names = op_names(fn)
            fused = sorted(n for n in names if "mkldnn_rnn" in n)
            entry_[label] = (
                f"oneDNN fused RNN ({', '.join(fused)})"
                if fused
                else "ATen native time loop (per step: "
                + ", ".join(sorted(names & {"aten::addmm", "aten::sigmoid_", "aten::tanh_"}))
                + ")"
            )
        with torch.backends.mkldnn.flags(enabled=False):
            names = op_names(fwd)
        entry_["inference_mkldnn_disabled"] = (
            "oneDNN fused RNN" if any("mkldnn_rnn" in n for n in names) else "ATen native time loop"
        )
        out[cls.__name__] = entry_
    return out


class LoopLSTM(nn.Module):
    """A single-layer, unidirectional, batch-first nn.LSTM unrolled in Python over nn.LSTMCell."""

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(lstm.input_size, lstm.hidden_size, bias=lstm.bias)
        with torch.no_grad():
            self.cell.weight_ih.copy_(lstm.weight_ih_l0)
            self.cell.weight_hh.copy_(lstm.weight_hh_l0)
            if lstm.bias:
                self.cell.bias_ih.copy_(lstm.bias_ih_l0)
                self.cell.bias_hh.copy_(lstm.bias_hh_l0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h = x.new_zeros(x.shape[0], self.cell.hidden_size)
        c = torch.zeros_like(h)
        outs = []
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
            outs.append(h)
        return torch.stack(outs, dim=1), (h, c)


def unroll_lstms(model: nn.Module) -> int:
    """Replace every single-layer unidirectional batch-first nn.LSTM in ``model`` by a LoopLSTM."""
    replaced = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if (
                isinstance(child, nn.LSTM)
                and child.num_layers == 1
                and not child.bidirectional
                and child.batch_first
                and child.proj_size == 0
            ):
                setattr(parent, child_name, LoopLSTM(child))
                replaced += 1
    return replaced


class MkldnnOff(nn.Module):
    """Runs the wrapped model with oneDNN disabled (LSTM falls back to ATen's kernel, convs to im2col)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.backends.mkldnn.flags(enabled=False):
            return self.model(x)


def fused_lstm(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """nn.LSTM (oneDNN) vs nn.LSTM with oneDNN off (ATen) vs a Python loop of nn.LSTMCell, same weights."""
    shape = tuple(args.shape)
    fused = make_model(spec, shape, args.seed)
    loop = copy.deepcopy(fused)
    if not unroll_lstms(loop):
        return {"status": "skipped", "reason": f"{spec} has no single-layer unidirectional nn.LSTM"}
    aten = MkldnnOff(copy.deepcopy(fused))
    variants = {"nn.LSTM oneDNN": fused, "nn.LSTM ATen (mkldnn off)": aten, "LSTMCell python loop": loop}
    xb = torch.randn(args.infer_batch, *shape[:2])
    with torch.inference_mode():
        ref = fused.eval()(xb)
        diffs = {k: float((m.eval()(xb) - ref).abs().max()) for k, m in variants.items()}
    result: dict[str, Any] = {"status": "ok", "model": spec, "max_abs_diff_vs_fused": diffs}
    n = max(args.steps, 3)
    t = interleaved({k: train_step(m, args.batch, shape, 1e-3) for k, m in variants.items()}, n, 1)
    train = {k: stats(v, args.batch) for k, v in t.items()}
    t = interleaved({k: infer(m, xb) for k, m in variants.items()}, max(args.repeats, 3), 1)
    big = {k: stats(v, args.infer_batch) for k, v in t.items()}
    x1 = torch.randn(1, *shape[:2])
    with threads(1):
        t = interleaved({k: infer(m, x1) for k, m in variants.items()}, args.latency_calls, 3)
    b1 = {k: stats(v, 1) for k, v in t.items()}
    base = "nn.LSTM oneDNN"
    for label, s, unit in (
        (f"train_b{args.batch}", train, "windows_per_s"),
        (f"inference_b{args.infer_batch}", big, "windows_per_s"),
        ("latency_b1_1thread", b1, "median_ms"),
    ):
        result[label] = {
            k: (round(1000 * v["median_s"], 3) if unit == "median_ms" else v["windows_per_s"])
            for k, v in s.items()
        }
        result[label]["unit"] = unit
        # speed-up of the fused kernel over each alternative
        result[label]["fused_speedup"] = {k: verdict(s[k], s[base], args.threshold) for k in s if k != base}
    return result


def mkldnn_conv(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """Training step of a CNN with oneDNN convolutions (default) vs oneDNN disabled."""
    shape = tuple(args.shape)
    on = make_model(spec, shape, args.seed)
    off = MkldnnOff(copy.deepcopy(on))
    n = min(max(args.steps, 2), 3)
    t = interleaved(
        {"oneDNN": train_step(on, args.batch, shape, 1e-3), "off": train_step(off, args.batch, shape, 1e-3)},
        n,
        1,
    )
    s = {k: stats(v, args.batch) for k, v in t.items()}
    return {
        "model": spec,
        "workload": f"training step batch {args.batch}",
        "oneDNN_windows_per_s": s["oneDNN"]["windows_per_s"],
        "mkldnn_disabled_windows_per_s": s["off"]["windows_per_s"],
        **verdict(s["off"], s["oneDNN"], args.threshold),
    }


def channels_last(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """A model with 2D convolutions (DeepConvLSTM's per-channel temporal convs) in channels_last."""
    shape = tuple(args.shape)
    base = make_model(spec, shape, args.seed)
    cl = copy.deepcopy(base).to(memory_format=torch.channels_last)
    xb = torch.randn(args.infer_batch, *shape[:2])
    with torch.inference_mode():
        diff = float((base.eval()(xb) - cl.eval()(xb)).abs().max())
    t = interleaved({"contiguous": infer(base, xb), "channels_last": infer(cl, xb)}, max(args.repeats, 2), 1)
    big = {k: stats(v, args.infer_batch) for k, v in t.items()}
    t = interleaved(
        {
            "contiguous": train_step(base, args.batch, shape, 1e-3),
            "channels_last": train_step(cl, args.batch, shape, 1e-3),
        },
        min(max(args.steps, 2), 4),
        1,
    )
    train = {k: stats(v, args.batch) for k, v in t.items()}
    return {
        "model": spec,
        "max_abs_diff": diff,
        f"inference_b{args.infer_batch}": {
            "contiguous_windows_per_s": big["contiguous"]["windows_per_s"],
            "channels_last_windows_per_s": big["channels_last"]["windows_per_s"],
            **verdict(big["contiguous"], big["channels_last"], args.threshold),
        },
        f"train_b{args.batch}": {
            "contiguous_windows_per_s": train["contiguous"]["windows_per_s"],
            "channels_last_windows_per_s": train["channels_last"]["windows_per_s"],
            **verdict(train["contiguous"], train["channels_last"], args.threshold),
        },
    }


# --------------------------------------------------------------------------- report


def cpu_times() -> list[int]:
    """The aggregate ``cpu`` line of /proc/stat (user nice system idle iowait irq softirq steal ...)."""
    try:
        return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return []


def cpu_pressure_us() -> int | None:
    """Total microseconds in which some runnable task waited for a CPU (Linux PSI), if available."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None


def snapshot() -> dict[str, Any]:
    own = os.times()
    return {
        "wall": time.perf_counter(),
        "own": own.user + own.system + own.children_user + own.children_system,
        "cpu": cpu_times(),
        "psi": cpu_pressure_us(),
    }


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def contention(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """How busy the machine was with other work between two snapshots (the noise behind a timing)."""
    wall = after["wall"] - before["wall"]
    a, b = before["cpu"], after["cpu"]
    if wall <= 0 or len(a) < 8 or len(b) < 8:
        return {}
    hz = os.sysconf("SC_CLK_TCK")
    busy = sum(b[i] - a[i] for i in (0, 1, 2, 5, 6)) / hz
    capacity = wall * usable_cpus()
    out = {
        "other_cpu_pct": round(100 * max(busy - (after["own"] - before["own"]), 0.0) / capacity, 1),
        "steal_pct": round(100 * (b[7] - a[7]) / hz / capacity, 2),
    }
    if before["psi"] is not None and after["psi"] is not None:
        out["cpu_pressure_pct"] = round((after["psi"] - before["psi"]) / 1e4 / wall, 1)
    return out


def thread_count(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """Training step on one thread vs all threads: many tiny ops (an RNN time loop) parallelise badly."""
    shape = tuple(args.shape)
    model = make_model(spec, shape, args.seed)
    step = train_step(model, args.batch, shape, 1e-3)
    every = usable_cpus()
    if every < 2:
        return {"status": "skipped", "reason": "only one usable CPU"}

    def one() -> None:
        with threads(1):
            step()

    def all_() -> None:
        with threads(every):
            step()

    t = interleaved({"one": one, "all": all_}, max(args.steps, 2), 1)
    s = {k: stats(v, args.batch) for k, v in t.items()}
    return {
        "model": spec,
        "workload": f"training step batch {args.batch}",
        "threads_all": every,
        "one_thread_windows_per_s": s["one"]["windows_per_s"],
        "all_threads_windows_per_s": s["all"]["windows_per_s"],
        "all_threads_spread_pct": s["all"]["spread_pct"],
        "one_thread_spread_pct": s["one"]["spread_pct"],
        **verdict(s["one"], s["all"], args.threshold),
    }


def machine_info() -> dict[str, Any]:
    cpu = cpu_name()
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cpus_usable": usable_cpus(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "mkl": torch.backends.mkl.is_available(),
        "openmp": torch.backends.openmp.is_available(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }


def describe_compile(v: dict[str, Any]) -> str:
    if v["status"] == "failed":
        return f"failed ({v['error'][:100]})"
    text = (
        f"{v['verdict']} (x{v['speedup_median']:.2f} median, compile {v['compile_s']:.1f} s, "
        f"{v.get('graphs', '?')} graphs, {v.get('graph_breaks', '?')} breaks)"
    )
    if v["status"] != "ok":
        reason = "; ".join(v.get("unsupported", [])) or "no graph captured"
        text = f"not compiled, runs eager ({reason})"
    if isinstance(v.get("with_allow_rnn"), dict):
        text += f"; with allow_rnn=True (experimental): {describe_compile(v['with_allow_rnn'])}"
    return text


def conclusions(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    rows = [r for r in result["models"] if "train" in r]
    out: list[str] = []
    if not rows:
        return ["no model could be measured"]
    thr = f"±{args.threshold:.0%}"
    by_train = sorted(rows, key=lambda r: r["train"]["windows_per_s"], reverse=True)
    fast, slow = by_train[0], by_train[-1]
    text = (
        f"training (batch {args.batch}): fastest {fast['spec']} {fast['train']['windows_per_s']:.0f} windows/s, "
        f"slowest {slow['spec']} {slow['train']['windows_per_s']:.0f} windows/s "
        f"({fast['train']['windows_per_s'] / slow['train']['windows_per_s']:.0f}x apart)"
    )
    if tuple(args.shape) == UCI_HAR_SHAPE:
        text += (
            f"; one epoch over UCI HAR's {UCI_HAR_TRAIN_WINDOWS} training windows takes about "
            f"{UCI_HAR_TRAIN_WINDOWS / fast['train']['windows_per_s']:.0f} s to "
            f"{UCI_HAR_TRAIN_WINDOWS / slow['train']['windows_per_s']:.0f} s on this machine"
        )
    out.append(text)
    by_lat = sorted(rows, key=lambda r: r["latency_b1"]["median_ms"])
    worst = by_lat[-1]
    window_ms = 1000 * args.shape[0] / args.rate_hz
    out.append(
        f"latency (batch 1, 1 thread): {by_lat[0]['spec']} {by_lat[0]['latency_b1']['median_ms']:.2f} ms to "
        f"{worst['spec']} {worst['latency_b1']['median_ms']:.1f} ms per window; a {args.shape[0]}-sample window "
        f"at {args.rate_hz:g} Hz lasts {window_ms:.0f} ms, so the slowest model still runs "
        f"{window_ms / worst['latency_b1']['median_ms']:.0f}x faster than real time"
    )
    by_inf = sorted(rows, key=lambda r: r["inference"]["windows_per_s"], reverse=True)
    out.append(
        f"inference (batch {args.infer_batch}): {by_inf[0]['spec']} {by_inf[0]['inference']['windows_per_s']:.0f} "
        f"to {by_inf[-1]['spec']} {by_inf[-1]['inference']['windows_per_s']:.0f} windows/s"
    )
    recurrent = [r for r in rows if {"LSTM", "GRU", "ConvLSTMCell"} & set(r["layers"])]
    cnn = [r for r in rows if r not in recurrent]
    if recurrent and cnn:
        slowest = min(cnn, key=lambda c: c["train"]["windows_per_s"])
        deep_rnn = [r for r in recurrent if r["train"]["windows_per_s"] < slowest["train"]["windows_per_s"]]
        out.append(
            f"{len(deep_rnn)} of {len(recurrent)} recurrent models train slower than the slowest pure CNN "
            f"({slowest['spec']}, {slowest['train']['windows_per_s']:.0f} windows/s): "
            + (", ".join(r["spec"] for r in deep_rnn) or "none")
        )
    opt = result["optimisations"]
    comp = opt.get("torch_compile", {})
    items = [(k, v) for k, v in comp.items() if isinstance(v, dict) and "status" in v and k != "init"]
    if items:
        parts = [f"{key}: {describe_compile(v)}" for key, v in items]
        out.append("torch.compile on CPU: " + "; ".join(parts))
    fl = opt.get("fused_lstm", {})
    if fl.get("status") == "ok":
        tr = fl[f"train_b{args.batch}"]["fused_speedup"]
        lat = fl["latency_b1_1thread"]["fused_speedup"]
        out.append(
            f"fused nn.LSTM (oneDNN) vs a Python LSTMCell loop on {fl['model']}: x{tr['LSTMCell python loop']['speedup_median']:.1f} "
            f"training, x{lat['LSTMCell python loop']['speedup_median']:.1f} batch-1 latency; vs ATen's own LSTM kernel "
            f"(oneDNN off): x{tr['nn.LSTM ATen (mkldnn off)']['speedup_median']:.2f} training "
            f"({tr['nn.LSTM ATen (mkldnn off)']['verdict']})"
        )
    paths = opt.get("rnn_kernels", {})
    if "LSTM" in paths and "GRU" in paths:
        out.append(f"nn.LSTM runs {paths['LSTM']['training']}; nn.GRU runs {paths['GRU']['training']}")
    th = opt.get("threads")
    if isinstance(th, dict) and "verdict" in th:
        out.append(
            f"{th['threads_all']} threads vs 1 thread for training {th['model']}: {th['verdict']} "
            f"(x{th['speedup_median']:.2f} median, x{th['speedup_best']:.2f} best run; spread "
            f"{th['all_threads_spread_pct']:.0f}% on all threads vs {th['one_thread_spread_pct']:.0f}% on one)"
        )
    mc = opt.get("mkldnn_conv")
    if isinstance(mc, dict) and "verdict" in mc:
        out.append(
            f"oneDNN convolutions (already the default) on {mc['model']}: x{mc['speedup_median']:.1f} training "
            f"over oneDNN disabled ({mc['verdict']})"
        )
    cl = opt.get("channels_last")
    if isinstance(cl, dict):
        inf = cl[f"inference_b{args.infer_batch}"]
        tr = cl[f"train_b{args.batch}"]
        out.append(
            f"channels_last on {cl['model']} (the only 2D-conv model): inference {inf['verdict']} "
            f"(x{inf['speedup_median']:.2f}), training {tr['verdict']} (x{tr['speedup_median']:.2f}); "
            "n/a for the 1D-conv models"
        )
    big = [r["inference_mode_vs_no_grad"][f"batch_{args.infer_batch}"]["speedup_median"] for r in rows]
    one = [r["inference_mode_vs_no_grad"]["batch_1"]["speedup_median"] for r in rows]
    helps = [r["spec"] for r in rows if r["inference_mode_vs_no_grad"]["batch_1"]["verdict"] == "helps"]
    out.append(
        f"inference_mode vs no_grad: median speed-up x{statistics.median(one):.2f} at batch 1 and "
        f"x{statistics.median(big):.2f} at batch {args.infer_batch} across models"
        + (f"; beyond {thr} at batch 1 only for {', '.join(helps)}" if helps else f"; within {thr} noise")
    )
    spreads = [r["train"]["spread_pct"] for r in rows] + [r["inference"]["spread_pct"] for r in rows]
    chosen = result["settings"]["threads"]
    if chosen["multi_threaded_runs"] < result["machine"]["cpus_usable"]:
        out.append(
            f"multi-threaded runs used {chosen['multi_threaded_runs']} of {result['machine']['cpus_usable']} "
            f"CPUs ({chosen['why']})"
        )
    busy = result["machine"].get("contention", {})
    skipped = {r["spec"] for r in result["models"] if "train" not in r}  # nothing of theirs was measured
    measured = {
        k: v
        for k, v in result["sections"].items()
        if "other_cpu_pct" in v and "compile" not in k and k not in skipped
    }
    loud = sorted(k for k, v in measured.items() if v["other_cpu_pct"] >= args.busy_pct)
    if loud:
        out.append(
            f"other processes used >= {args.busy_pct:g}% of the CPUs while measuring "
            f"{'every section' if len(loud) == len(measured) else ', '.join(loud)}: "
            "those numbers (multi-threaded ones above all) are pessimistic; rerun on an idle machine"
        )
    out.append(
        f"noise: run-to-run spread median {statistics.median(spreads):.0f}% (max {max(spreads):.0f}%), "
        + (
            f"other processes used {busy['other_cpu_pct']}% of the CPUs over the run "
            f"(CPU pressure {busy.get('cpu_pressure_pct', '?')}%, steal {busy['steal_pct']}%), "
            if busy
            else ""
        )
        + "load "
        f"average {result['machine']['load_average_start'][0]} at start / {result['machine']['load_average_end'][0]} "
        f"at end on {result['machine']['cpus_usable']} CPUs; differences under {thr} are not meaningful"
    )
    return out


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    ib = args.infer_batch
    head = (
        f"{'model:preset':22s} {'params':>8s} {'train w/s':>10s} {'lat ms':>8s} {'infer w/s':>10s} "
        f"{'im/ng b1':>9s} {'im/ng b' + str(ib):>11s} {'busy%':>6s}  channels_last"
    )
    print(
        f"shape T={args.shape[0]} C={args.shape[1]} K={args.shape[2]}; train w/s: windows/s at batch {args.batch}; "
        f"lat ms: batch 1 on 1 thread (median); infer w/s: batch {ib} on "
        f"{result['machine']['torch_threads']} thread(s); im/ng: inference_mode speed-up over no_grad; "
        "busy%: CPU used by other processes meanwhile"
    )
    print(head)
    print("-" * len(head))
    for r in result["models"]:
        if "train" not in r:
            print(f"{r['spec']:22s} skipped: {r['skipped']}")
            continue
        im = r["inference_mode_vs_no_grad"]
        busy = result["sections"].get(r["spec"], {}).get("other_cpu_pct", float("nan"))
        print(
            f"{r['spec']:22s} {r['params']:8d} {r['train']['windows_per_s']:10.0f} "
            f"{r['latency_b1']['median_ms']:8.2f} {r['inference']['windows_per_s']:10.0f} "
            f"{im['batch_1']['speedup_median']:9.2f} {im[f'batch_{ib}']['speedup_median']:11.2f} {busy:6.0f}  "
            f"{r['channels_last'].split(':')[0]}"
        )
    print("\nconclusions:")
    for line in result["conclusions"]:
        print(f"- {line}")


def main_specs(quick: bool, only: list[str] | None) -> list[str]:
    specs = []
    for name in model_names():
        presets = (QUICK_PRESETS if quick else {}).get(name) or MAIN_PRESETS.get(name)
        if presets is None:
            known = list(entry(name).presets)
            presets = known[:1] or [""]
        specs += [f"{name}:{p}" if p else name for p in presets]
    if only:
        specs = [s for s in specs if s in only or s.partition(":")[0] in only]
    return specs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~1 minute smoke run")
    parser.add_argument("--shape", nargs=3, type=int, default=list(UCI_HAR_SHAPE), metavar=("T", "C", "K"))
    parser.add_argument("--batch", type=int, default=64, help="training batch size")
    parser.add_argument("--infer-batch", type=int, default=256, help="inference throughput batch size")
    parser.add_argument("--steps", type=int, help="timed training steps (full 5, quick 2)")
    parser.add_argument("--warmup", type=int, help="untimed warm-up steps (full 2, quick 1)")
    parser.add_argument("--latency-calls", type=int, help="batch-1 calls timed (full 30, quick 10)")
    parser.add_argument("--repeats", type=int, help="timed batch-256 inference calls (full 3, quick 2)")
    parser.add_argument(
        "--threads",
        default="auto",
        help="torch threads for the multi-threaded runs: a number, 'all' (every usable CPU) or 'auto' "
        "(default: every usable CPU that other processes are not keeping busy, sampled for 2 s at start)",
    )
    parser.add_argument("--models", nargs="+", help="only these models or model:preset specs")
    parser.add_argument(
        "--compile", nargs="*", help="model:preset specs for compiled inference ('none': skip)"
    )
    parser.add_argument("--compile-train", nargs="*", help="model:preset specs for compiled training")
    parser.add_argument("--lstm-model", default="lstm_dense:tutorial", help="model for the fused-LSTM test")
    parser.add_argument(
        "--thread-model", default="cnn_resbigru:model2", help="model for the 1-vs-all-threads test"
    )
    parser.add_argument("--conv-model", default="resnet1d:wang2017", help="model for the oneDNN conv test")
    parser.add_argument("--threshold", type=float, default=0.10, help="speed-ups within this are noise")
    parser.add_argument(
        "--busy-pct", type=float, default=25.0, help="flag sections where other work used this much CPU"
    )
    parser.add_argument("--rate-hz", type=float, default=50.0, help="sampling rate (real-time comparison)")
    parser.add_argument("--warm-compile-cache", action="store_true", help="reuse inductor's on-disk cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--report-only", action="store_true", help="re-render the docs from the JSON (docs/render.py)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.compile is None:
        args.compile = QUICK_COMPILE if args.quick else FULL_COMPILE
    if args.compile_train is None:
        args.compile_train = [] if args.quick else FULL_COMPILE_TRAIN
    args.compile = [s for s in args.compile if s != "none"]
    args.compile_train = [s for s in args.compile_train if s != "none"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report_only:
        render_docs()
        return
    default_threads = torch.get_num_threads()
    before = snapshot()
    time.sleep(2.0)
    idle_check = contention(before, snapshot())
    busy_cpus = round(idle_check.get("other_cpu_pct", 0.0) / 100 * usable_cpus())
    if args.threads == "auto":
        n_threads = max(1, usable_cpus() - busy_cpus)
        why = f"auto: {usable_cpus()} usable CPUs, {busy_cpus} kept busy by other processes at start"
    elif args.threads == "all":
        n_threads, why = usable_cpus(), "all usable CPUs"
    else:
        n_threads, why = int(args.threads), "--threads"
    torch.set_num_threads(n_threads)
    if busy_cpus:
        print(
            f"warning: other processes are using {idle_check['other_cpu_pct']}% of the CPUs; timings will be "
            f"pessimistic; running on {n_threads} thread(s) ({why})",
            file=sys.stderr,
        )
    started = time.perf_counter()
    run_start = snapshot()
    shape = tuple(args.shape)
    result: dict[str, Any] = {
        "benchmark": "CPU throughput of the model zoo at the published presets, synthetic float32 input",
        "machine": {
            **machine_info(),
            "torch_threads_default": default_threads,
            "contention_before_start": idle_check,
        },
        "settings": {
            "quick": args.quick,
            "threads": {"multi_threaded_runs": n_threads, "why": why},
            "shape": {"T": shape[0], "C": shape[1], "K": shape[2]},
            "train": f"forward + backward + Adam step (TrainConfig defaults, preset lr), batch {args.batch}, "
            f"model in train mode; preset optimiser/L2/clipping/batch size not applied",
            "steps": args.steps,
            "warmup": args.warmup,
            "latency_calls": args.latency_calls,
            "repeats": args.repeats,
            "infer_batch": args.infer_batch,
            "threshold": args.threshold,
            "statistics": "throughput = batch / median time; A/B runs interleaved; a verdict needs both the "
            "median and the best-run speed-up beyond the threshold",
        },
        "note": "wall-clock timings on a shared machine: noisy, compare within one run only",
        "models": [],
        "optimisations": {},
    }
    sections = result["sections"] = {}
    clock = snapshot()

    def lap(name: str) -> None:
        nonlocal clock
        now = snapshot()
        sections[name] = {"seconds": round(now["wall"] - clock["wall"], 1), **contention(clock, now)}
        clock = now

    for spec in main_specs(args.quick, args.models):
        print(f"measuring {spec} ...", flush=True)
        try:
            result["models"].append(measure_model(spec, args))
        except BadInput as exc:  # e.g. a --shape too short for the model
            result["models"].append({"spec": spec, "skipped": str(exc)})
        except Exception as exc:
            result["models"].append({"spec": spec, "skipped": f"failed: {type(exc).__name__}: {exc}"[:400]})
        lap(spec)

    opt = result["optimisations"]
    print("optimisations: RNN kernels, fused LSTM, oneDNN conv, threads ...", flush=True)
    opt["rnn_kernels"] = rnn_paths(shape)
    for key, fn, spec in (
        ("fused_lstm", fused_lstm, args.lstm_model),
        ("mkldnn_conv", mkldnn_conv, args.conv_model),
        ("threads", thread_count, args.thread_model),
    ):
        try:
            opt[key] = fn(spec, args)
        except BadInput as exc:
            opt[key] = {"status": "skipped", "reason": str(exc)}
        lap(key)
    conv2d = [r["spec"] for r in result["models"] if "Conv2d" in r.get("layers", ())]
    if conv2d:
        print(f"optimisations: channels_last on {conv2d[0]} ...", flush=True)
        opt["channels_last"] = channels_last(conv2d[0], args)
        lap("channels_last")
    else:
        opt["channels_last"] = "n/a: no measured model has 2D convolutions"
    opt["channels_last_1d"] = "n/a: 1D convolutions (channels_last/channels_last_3d are 4D/5D layouts)"

    comp: dict[str, Any] = {"backend": "inductor (torch.compile default)"}
    opt["torch_compile"] = comp
    if args.compile or args.compile_train:
        cache = None
        if not args.warm_compile_cache:
            cache = tempfile.mkdtemp(prefix="inductor-cache-")
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        comp["cache"] = "fresh (cold compile)" if cache else "inductor's default on-disk cache"
        try:
            print("optimisations: torch.compile start-up ...", flush=True)
            comp["init"] = compile_init()
            lap("compile init")
            for spec in args.compile:
                print(f"optimisations: torch.compile {spec} inference ...", flush=True)
                comp[f"{spec} inference"] = compile_model(spec, args, training=False)
                lap(f"compile {spec} inference")
            for spec in args.compile_train:
                print(f"optimisations: torch.compile {spec} training ...", flush=True)
                comp[f"{spec} training"] = compile_model(spec, args, training=True)
                lap(f"compile {spec} training")
        finally:
            if cache:
                shutil.rmtree(cache, ignore_errors=True)

    result["machine"]["contention"] = contention(run_start, snapshot())
    result["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    result["runtime_s"] = round(time.perf_counter() - started, 1)
    result["conclusions"] = conclusions(result, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out, "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    print()
    print_table(result, args)
    print(f"\nruntime {result['runtime_s']:.0f} s; wrote {args.out}")
    if args.out == RESULTS:
        render_docs()


if __name__ == "__main__":
    main()
