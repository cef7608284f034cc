"""A study handed to a running Ray cluster as a Ray job (the Jobs API of its head, port 8265).

The project folder travels as the job's working directory (without the venv, git history, raw data,
run outputs and local databases); `har tune` runs on the head as the job's driver and joins the cluster
(``--address auto``). What must outlive the job therefore lives outside that copy: the tracking store
(a server, or an absolute SQLite path the head can reach), the Optuna storage and Tune's storage.
Stopping a job sends its driver SIGINT (as Ctrl-C): Tune stops the trials cleanly and saves the
experiment, and a later ``--resume`` job continues it.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.job_submission import JobDetails, JobStatus, JobSubmissionClient

from har.errors import BadInput, HarError

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
EXCLUDES = [".git", ".venv", "venv", "data/raw", "runs", "mlruns", "mlartifacts", "reports", "test-artifacts",
            "*.db", ".dvc/cache", ".dvc/tmp", "__pycache__", ".pytest_cache", ".ruff_cache"]  # fmt: skip
# Ray's job supervisor stops a job with this signal and kills it after this many seconds: SIGINT is Tune's
# graceful stop (trials end, experiment saved); two minutes covers saving a large experiment
STOP_ENV = {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": "120"}
ENDED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}


@dataclass
class StudyJob:
    """What a submitted study needs: its name, where its results go, and `har tune` flags to pass on."""

    study: str
    tracking_uri: str
    storage_path: str
    optuna_storage: str | None = None
    project: Path = Path()
    tune_args: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Refuse stores that would live inside the job's copy of the project (lost when it ends)."""
        if self.tracking_uri.startswith("sqlite:///") and not Path(self.tracking_uri[10:]).is_absolute():
            raise BadInput(
                f"--tracking-uri {self.tracking_uri}: a job runs in a copy of the project on the cluster, where "
                "a relative SQLite file is lost with the job; give the tracking server (http://HOST:5000) or "
                "an absolute sqlite:////path the head node can reach"
            )
        if "://" not in self.storage_path and not Path(self.storage_path).is_absolute():
            raise BadInput(
                f"--storage-path {self.storage_path}: a job's relative path is lost with the job; give shared "
                "storage every node reaches (an absolute path or a URI such as s3://bucket/har)"
            )
        remote_tracking = not self.tracking_uri.startswith("sqlite:///")
        if remote_tracking and not self.optuna_storage:
            raise BadInput(
                "--optuna-storage: required with a tracking server (the default, optuna.db beside a SQLite "
                "tracking file, does not exist there); e.g. postgresql://har@HOST/har"
            )
        if not (self.project / "pipelines").is_dir() or not (self.project / "params.yaml").is_file():
            raise BadInput(
                f"{self.project.resolve()}: not a har-lab project (needs params.yaml and pipelines/)"
            )

    def entrypoint(self) -> str:
        command = ["har", "tune", "--study", self.study, "--address", "auto", "--plain",
                   "--tracking-uri", self.tracking_uri, "--storage-path", self.storage_path]  # fmt: skip
        if self.optuna_storage:
            command += ["--optuna-storage", self.optuna_storage]
        return shlex.join(command + self.tune_args)

    def runtime_env(self) -> dict[str, Any]:
        return {"working_dir": str(self.project.resolve()), "excludes": EXCLUDES, "env_vars": STOP_ENV}


class Jobs:
    """The Jobs API of one Ray cluster's head."""

    def __init__(self, address: str):
        self.address = address
        try:
            self.client = JobSubmissionClient(address)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise HarError(f"no Ray job server at {address}: {str(exc).splitlines()[0][:200]}") from exc

    def submit(self, job: StudyJob, job_id: str | None = None, wait_s: float = 60.0) -> str:
        """Submit; a head that has just started answers "no available agent" for a while: retried."""
        job.check()
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self.client.submit_job(
                    entrypoint=job.entrypoint(),
                    runtime_env=job.runtime_env(),
                    submission_id=job_id,
                    metadata={"har.study": job.study},
                )
            except RuntimeError as exc:
                if "No available agent" in str(exc) and time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                raise HarError(
                    f"job not submitted to {self.address}: {str(exc).splitlines()[0][:300]}"
                ) from exc

    def info(self, job_id: str) -> JobDetails:
        try:
            return self.client.get_job_info(job_id)
        except RuntimeError as exc:
            raise BadInput(
                f"job {job_id!r}: not found at {self.address} ('har jobs list' shows the jobs)"
            ) from exc

    def list(self) -> list[JobDetails]:
        return sorted(self.client.list_jobs(), key=lambda j: j.start_time or 0)

    def logs(self, job_id: str) -> str:
        self.info(job_id)
        return self.client.get_job_logs(job_id)

    def follow(self, job_id: str, write: Callable[[str], Any]) -> None:
        """Pass the job's output to ``write`` as it is written, until the job ends."""
        self.info(job_id)

        async def tail() -> None:
            async for chunk in self.client.tail_job_logs(job_id):
                write(chunk)

        asyncio.run(tail())

    def stop(self, job_id: str) -> bool:
        """Ask the job's driver to stop (SIGINT: Tune's clean stop); True when the job was running."""
        self.info(job_id)
        return self.client.stop_job(job_id)
