"""``har jobs``: hand a study to a running Ray cluster as a Ray job, and follow, list or stop it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from har.cli.console import out
from har.cli.options import TrackingOpt

app = typer.Typer(
    help="Studies as Ray jobs on a running cluster (Ray's Jobs API, the head's port 8265).",
    no_args_is_help=True,
)

AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The cluster head's job server, e.g. http://10.0.0.1:8265 "
        "(default: $RAY_API_SERVER_ADDRESS, else http://127.0.0.1:8265).",
    ),
]
JobIdArg = Annotated[str, typer.Argument(help="The job's submission id (printed by 'har jobs submit').")]


def _jobs(address: str | None):
    from har.tune.jobs import DEFAULT_ADDRESS, Jobs

    return Jobs(address or os.environ.get("RAY_API_SERVER_ADDRESS") or DEFAULT_ADDRESS)


@app.command("submit")
def submit_cmd(
    study: Annotated[str, typer.Option("--study", "-s", help="Study name (pipelines/<study>.yaml).")],
    address: AddressOpt = None,
    tracking_uri: TrackingOpt = None,
    storage_path: Annotated[
        str | None,
        typer.Option(
            help="Tune storage every node reaches (absolute path or URI, e.g. s3://bucket/har; "
            "default: $HAR_STORAGE_PATH)."
        ),
    ] = None,
    optuna_storage: Annotated[
        str | None,
        typer.Option(help="Optuna database (required with a tracking server; default: $HAR_OPTUNA_STORAGE)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the study's newest unfinished run.")
    ] = False,
    job_id: Annotated[
        str | None, typer.Option("--job-id", help="Submission id (default: Ray picks one).")
    ] = None,
    project: Annotated[
        Path, typer.Option(help="The project folder sent as the job's working directory.")
    ] = Path(),
    follow: Annotated[bool, typer.Option("--follow", help="Print the job's output until it ends.")] = False,
    tune_args: Annotated[
        list[str] | None,
        typer.Argument(help="More 'har tune' options after --, e.g. -- --trials 20 --concurrency 16."),
    ] = None,
) -> None:
    """Submit `har tune --study NAME` to a running Ray cluster as a job: the project folder (without .venv,
    .git, data/raw, runs and local databases) is its working directory, the driver runs on the head and
    joins the cluster. The tracking store, the Optuna storage and Tune's storage must outlive the job:
    a tracking server (or an absolute SQLite path the head reaches) and shared storage."""
    from har.tracking.store import resolve_uri
    from har.tune.jobs import StudyJob

    storage = storage_path or os.environ.get("HAR_STORAGE_PATH")
    if not storage:
        from har.errors import BadInput

        raise BadInput(
            "--storage-path: required for a job (shared storage every node reaches), or set HAR_STORAGE_PATH"
        )
    job = StudyJob(
        study=study, tracking_uri=resolve_uri(tracking_uri), storage_path=storage,
        optuna_storage=optuna_storage or os.environ.get("HAR_OPTUNA_STORAGE"), project=project,
        tune_args=(["--resume"] if resume else []) + list(tune_args or []),
    )  # fmt: skip
    jobs = _jobs(address)
    submitted = jobs.submit(job, job_id)
    out.print(f"submitted job {submitted} to {jobs.address}: {job.entrypoint()}")
    out.print(f"follow: har jobs logs {submitted} --follow; stop (resumable): har jobs stop {submitted}")
    if follow:
        _follow(jobs, submitted)


def _follow(jobs, job_id: str) -> None:
    jobs.follow(job_id, lambda chunk: (sys.stdout.write(chunk), sys.stdout.flush()))
    status = _wait_ended(jobs, job_id, seconds=30)
    out.print(f"job {job_id}: {status}")
    if status != "SUCCEEDED":
        raise typer.Exit(1)


def _wait_ended(jobs, job_id: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        status = str(jobs.info(job_id).status.value)
        if status in ("SUCCEEDED", "FAILED", "STOPPED") or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


@app.command("status")
def status_cmd(job_id: JobIdArg, address: AddressOpt = None) -> None:
    """A job's state (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED), its command and its message."""
    info = _jobs(address).info(job_id)
    out.print(
        f"job {job_id}: {info.status.value}\n  {info.entrypoint}"
        + (f"\n  {info.message}" if info.message else "")
    )
    if info.status.value in ("FAILED",):
        raise typer.Exit(1)


@app.command("logs")
def logs_cmd(
    job_id: JobIdArg,
    address: AddressOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
) -> None:
    """A job's output (the driver's `har tune` lines)."""
    jobs = _jobs(address)
    if follow:
        _follow(jobs, job_id)
    else:
        sys.stdout.write(jobs.logs(job_id))


@app.command("list")
def list_cmd(address: AddressOpt = None) -> None:
    """The cluster's jobs, oldest first."""
    rows = _jobs(address).list()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("job", "status", "study", "started"):
        table.add_column(col, no_wrap=True)
    for job in rows:
        started = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(job.start_time / 1000)) if job.start_time else "-"
        )
        table.add_row(job.submission_id or job.job_id or "-", job.status.value,
                      (job.metadata or {}).get("har.study", "-"), started)  # fmt: skip
    out.print(table)


@app.command("stop")
def stop_cmd(
    job_id: JobIdArg,
    address: AddressOpt = None,
    wait: Annotated[int, typer.Option(help="Seconds to wait for the job to end.")] = 150,
) -> None:
    """Stop a job cleanly: its driver gets SIGINT (as Ctrl-C), Tune ends the running trials and saves the
    experiment; continue later with 'har jobs submit --study NAME --resume'."""
    jobs = _jobs(address)
    if not jobs.stop(job_id):
        out.print(f"job {job_id} was not running ({jobs.info(job_id).status.value})")
        return
    status = _wait_ended(jobs, job_id, seconds=wait)
    out.print(f"job {job_id}: {status}")
