"""Tracking load: M concurrent processes each log N metric values into their own MLflow run, against
(a) the embedded SQLite store and (b) ``mlflow server`` on PostgreSQL (both started here, on
127.0.0.1, with tests/servers.py). Afterwards every run's metric history is read back and counted.

    python bench/tracking_load.py                                  # M=8, N=2000, both backends
    python bench/tracking_load.py --procs 16 --metrics 5000 --backends server
    python bench/tracking_load.py --single 500 --chunk 50 --server-workers 2

Each process has its own ``MlflowClient``: it logs N - K values with ``log_batch`` in chunks of
``--chunk`` and the last K one at a time with ``log_metric`` (10 keys, step = i // 10, a value unique
to (process, i)). All processes start logging together (a barrier after imports and client set-up).

Reported per backend: throughput (values stored per second of the logging phase, first start to last
end), calls that raised (errors, with the first messages), values the writer knew failed, lost
(sent - stored), silent losses (lost although no call raised), unexpected or duplicate values read
back, and call latencies. Target: zero lost. SQLite with many writer processes may raise "database is
locked": those count as errors and losses, honestly.

Results: bench/results/tracking_load.json (machine, date, parameters, results) and a table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/servers.py: the shared PostgreSQL + mlflow server helpers
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_name  # noqa: E402
from report_sections import save_json  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "tracking_load.json"
KEYS = 10
BASE_TS = 1_700_000_000_000  # fixed timestamps: a value resent by a retry is the same row


def planned(index: int, n: int) -> list[tuple[str, float, int, int]]:
    """(key, value, timestamp, step) of process ``index``: values unique per process and position."""
    return [(f"load/k{i % KEYS}", float(index * 1_000_000 + i), BASE_TS + i, i // KEYS) for i in range(n)]


def _first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return text[0][:400] if text else type(exc).__name__


def writer(uri: str, run_id: str, index: int, n: int, single: int, chunk: int, barrier, queue) -> None:
    """One process: its own client, N values into its run, timings and errors back to the parent."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    client.get_run(run_id)  # connection / engine set-up before the clock starts
    values = planned(index, n)
    batched, singles = values[: n - single], values[n - single :]
    errors: list[str] = []
    failed = 0
    lat_batch: list[float] = []
    lat_single: list[float] = []
    barrier.wait(timeout=600)
    start = time.time()
    for i in range(0, len(batched), chunk):
        part = batched[i : i + chunk]
        t = time.perf_counter()
        try:
            client.log_batch(run_id, metrics=[Metric(k, v, ts, s) for k, v, ts, s in part])
        except Exception as exc:
            errors.append(_first_line(exc))
            failed += len(part)
        lat_batch.append(time.perf_counter() - t)
    for key, value, ts, step in singles:
        t = time.perf_counter()
        try:
            client.log_metric(run_id, key, value, timestamp=ts, step=step)
        except Exception as exc:
            errors.append(_first_line(exc))
            failed += 1
        lat_single.append(time.perf_counter() - t)
    end = time.time()
    with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):  # "View run ..." lines
        client.set_terminated(run_id)
    queue.put({"index": index, "start": start, "end": end, "errors": errors, "failed_values": failed,
               "lat_batch": lat_batch, "lat_single": lat_single})  # fmt: skip


def _ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def run_backend(name: str, uri: str, procs: int, n: int, single: int, chunk: int) -> dict[str, Any]:
    """Create the runs (sequentially, in the parent), start the writers, read everything back."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)  # a SQLite database is created and migrated here, once
    experiment_id = client.create_experiment(f"tracking-load-{name}-{int(time.time())}")
    run_ids = [client.create_run(experiment_id, run_name=f"writer-{i}").info.run_id for i in range(procs)]
    # forkserver: a clean process (no inherited database connections) that imports mlflow once, so
    # the writers start in seconds instead of each importing mlflow on the shared CPUs
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["mlflow.entities", "mlflow.tracking"])
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(target=writer, args=(uri, run_ids[i], i, n, single, chunk, barrier, queue))
        for i in range(procs)
    ]
    spawned = time.time()
    for w in workers:
        w.start()
    reports: list[dict[str, Any]] = []
    deadline = time.monotonic() + 3600
    while len(reports) < procs and time.monotonic() < deadline:
        try:
            reports.append(queue.get(timeout=5))
        except Exception:
            if not any(w.is_alive() for w in workers) and queue.empty():
                break
    for w in workers:
        w.join(30)
    crashed = procs - len(reports)  # a writer that died sent nothing: all its values count as lost

    read_start = time.perf_counter()
    stored = unexpected = 0
    read_errors: list[str] = []
    for i, run_id in enumerate(run_ids):
        expected = {(k, s, v) for k, v, _, s in planned(i, n)}
        seen: Counter = Counter()
        for key in sorted({k for k, *_ in planned(i, min(n, KEYS))}):
            try:
                history = client.get_metric_history(run_id, key)
            except Exception as exc:
                read_errors.append(_first_line(exc))
                continue
            seen.update((m.key, m.step, m.value) for m in history)
        stored += sum(1 for item in seen if item in expected)
        unexpected += sum(c for item, c in seen.items() if item not in expected)
        unexpected += sum(c - 1 for item, c in seen.items() if item in expected and c > 1)  # duplicates
    read_seconds = time.perf_counter() - read_start

    sent = procs * n
    errors = [e for r in reports for e in r["errors"]]
    failed_known = sum(r["failed_values"] for r in reports) + crashed * n
    wall = (max(r["end"] for r in reports) - min(r["start"] for r in reports)) if reports else float("nan")
    lat_batch = [x for r in reports for x in r["lat_batch"]]
    lat_single = [x for r in reports for x in r["lat_single"]]
    lost = sent - stored
    return {
        "uri": uri,
        "sent": sent,
        "stored": stored,
        "lost": lost,
        "silent_lost": lost - failed_known,  # lost although the writer saw no error
        "unexpected_or_duplicate": unexpected,
        "errors": len(errors),
        "error_kinds": dict(Counter(errors).most_common(5)),
        "failed_values_reported": failed_known,
        "crashed_writers": crashed,
        "wall_seconds": round(wall, 2),
        "throughput_metrics_per_s": round(stored / wall, 1) if wall and wall > 0 else None,
        "sent_per_s": round(sent / wall, 1) if wall and wall > 0 else None,
        "calls": {"log_batch": len(lat_batch), "log_metric": len(lat_single)},
        "latency_ms": {
            "log_batch_median": _ms(lat_batch, 0.5),
            "log_batch_p95": _ms(lat_batch, 0.95),
            "log_batch_max": _ms(lat_batch, 1.0),
            "log_metric_median": _ms(lat_single, 0.5),
            "log_metric_p95": _ms(lat_single, 0.95),
            "log_metric_max": _ms(lat_single, 1.0),
        },
        "setup_seconds": round(min(r["start"] for r in reports) - spawned, 2) if reports else None,
        "read_back_seconds": round(read_seconds, 2),
        "read_errors": len(read_errors),
    }


def sqlite_journal_mode(path: Path) -> str:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("pragma journal_mode").fetchone()[0])


def machine_info() -> dict[str, Any]:
    import mlflow
    import sqlalchemy

    cpu = cpu_name()
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "mlflow": mlflow.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }


def postgres_version(bindir: Path) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()  # fmt: skip
    return "unknown"


def table(results: dict[str, dict[str, Any]]) -> str:
    head = ("backend", "sent", "stored", "lost", "silent", "errors", "wall s", "metrics/s",
            "batch med ms", "single med ms", "single p95 ms")  # fmt: skip
    rows = [head]
    for name, r in results.items():
        lat = r["latency_ms"]
        rows.append((name, r["sent"], r["stored"], r["lost"], r["silent_lost"], r["errors"], r["wall_seconds"],
                     r["throughput_metrics_per_s"], lat["log_batch_median"], lat["log_metric_median"],
                     lat["log_metric_p95"]))  # fmt: skip
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]  # fmt: skip
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", "-M", type=int, default=8, help="concurrent writer processes")
    parser.add_argument("--metrics", "-N", type=int, default=2000, help="metric values per process")
    parser.add_argument("--single", "-K", type=int, default=200,
                        help="of those, values sent one at a time with log_metric (the rest: log_batch)")  # fmt: skip
    parser.add_argument(
        "--chunk", type=int, default=100, help="values per log_batch call (server limit 1000)"
    )
    parser.add_argument("--backends", default="sqlite,server", help="comma list of sqlite, server")
    parser.add_argument("--server-workers", type=int, default=1, help="mlflow server --workers")
    parser.add_argument("--mlflow-telemetry", action="store_true",
                        help="leave MLflow's usage telemetry on (default: MLFLOW_DISABLE_TELEMETRY=true; offline, its "
                             "failing config fetch pops an environment variable while requests read os.environ)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (0 <= args.single <= args.metrics) or not (1 <= args.chunk <= 1000) or args.procs < 1:
        parser.error("need 0 <= --single <= --metrics, 1 <= --chunk <= 1000, --procs >= 1")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"sqlite", "server"}:
        parser.error(f"unknown backend in {args.backends!r} (sqlite, server)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if not args.mlflow_telemetry:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

    from tests.servers import running_mlflow_server, running_postgres

    began = time.perf_counter()
    record: dict[str, Any] = {
        "benchmark": "MLflow tracking under concurrent writers: SQLite vs mlflow server on PostgreSQL",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "params": {
            "procs": args.procs,
            "metrics_per_proc": args.metrics,
            "single_log_metric_per_proc": args.single,
            "log_batch_chunk": args.chunk,
            "keys": KEYS,
            "server_workers": args.server_workers,
            "mlflow_telemetry": bool(args.mlflow_telemetry),
        },
        "results": {},
        "notes": [
            "throughput is of the logging phase only (all writers released together); process start-up, "
            "server start and read-back are listed separately; the machine is shared, see load_average",
            "MLflow telemetry is off unless --mlflow-telemetry: offline, its background config fetch fails and "
            "pops _MLFLOW_TELEMETRY_SESSION_ID from os.environ while requests iterates os.environ (proxy "
            "lookup), so a concurrent call can fail with KeyError (seen once: one log_batch of 100 values)",
        ],
    }
    with tempfile.TemporaryDirectory(prefix="har-tracking-load-") as tmp:
        for backend in backends:
            print(f"{backend}: {args.procs} processes x {args.metrics} values ...", flush=True)
            if backend == "sqlite":
                db = Path(tmp) / "load.db"
                result = run_backend(
                    "sqlite", f"sqlite:///{db}", args.procs, args.metrics, args.single, args.chunk
                )
                result["journal_mode"] = sqlite_journal_mode(db)
                result["uri"] = "sqlite:///<temporary folder>/load.db"
            else:
                folder = Path(tmp) / "server"
                t = time.perf_counter()
                with (
                    running_postgres() as pg,
                    running_mlflow_server(pg, folder, args.server_workers) as server,
                ):
                    started = time.perf_counter() - t
                    result = run_backend(
                        "server", server.url, args.procs, args.metrics, args.single, args.chunk
                    )
                    result["server_start_seconds"] = round(started, 1)
                    result["backend_store"] = f"PostgreSQL on 127.0.0.1 ({postgres_version(pg.bindir)})"
                    result["server_log_errors"] = sum(
                        1
                        for line in server.log_tail(10**8).splitlines()
                        if " 500 " in line or "ERROR" in line
                    )
            record["results"][backend] = result
            print(f"  stored {result['stored']}/{result['sent']}, lost {result['lost']}, errors {result['errors']}, "
                  f"{result['throughput_metrics_per_s']} metrics/s", flush=True)  # fmt: skip
    record["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    record["bench_seconds"] = round(time.perf_counter() - began, 1)
    save_json(args.output, record)
    print()
    print(table(record["results"]))
    for name, r in record["results"].items():
        for kind, count in r["error_kinds"].items():
            print(f"  {name}: {count} x {kind[:300]}")
    print(f"\nwritten {args.output}")
    return 0 if all(r["lost"] == 0 for r in record["results"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
