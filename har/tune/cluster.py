"""Where a study runs: the Ray cluster it starts or joins, and Tune's storage for trial checkpoints."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

from har.errors import HarError

DEFAULT_STORAGE = Path("runs") / "tune"
STORAGE_ENV = "HAR_STORAGE_PATH"


class _TuneInterruptNoise(logging.Filter):
    """On Ctrl-C / SIGUSR1 Tune advises ``Tuner.restore(...)`` and lists the trials that had no result
    yet; har says how to continue instead ("study interrupted ...; continue with: har tune ... --resume")."""

    MARKERS = ("Stop signal received", "Tuner.restore", "Failed to fetch metrics")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(marker in record.getMessage() for marker in self.MARKERS)


def runtime_defaults() -> None:
    """Environment defaults of a study's driver (a user's own setting wins)."""
    for name in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _TuneInterruptNoise) for f in logger.filters):
            logger.addFilter(_TuneInterruptNoise())
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Tune's own console output off (verbose=0): har's progress callback reports instead
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # trials checkpoint every epoch with num_to_keep=1, which forces frequent experiment snapshots
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # a tracking server that is down must not stall the driver for minutes per call (MLflow's default
    # is 7 retries with exponential backoff): fail fast, the driver queues and retries itself
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    # with a tracking server MLflow prints "View run ... at: URL" for every run it ends (and asks the
    # server for the run to do so): two lines per trial; `har ui` prints links that open the right view
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def storage_root(flag: str | None) -> str:
    """Tune's storage: --storage-path, $HAR_STORAGE_PATH, else runs/tune (absolute; URIs pass through)."""
    value = flag or os.environ.get(STORAGE_ENV) or str(DEFAULT_STORAGE)
    return value if "://" in value else str(Path(value).expanduser().resolve())


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> None:
    """Join ``address`` (else $RAY_ADDRESS), or start a new local Ray instance; once per process."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    # trial output stays in the trial logs (Tune's storage); failures reach MLflow as tag har.error
    common = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **common)
        else:
            # Ray's default for a new local instance is token authentication, and it says so with a
            # warning on every start; the default is kept (a user's RAY_AUTH_MODE still wins), the line not
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
                logging.ERROR
            )
            # address="local": always a new local instance, never a stray `ray start` cluster on this machine
            ray.init(
                address="local",
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                object_store_memory=2 * 1024**3,
                **common,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local Ray instance"
        raise HarError(f"could not start or join Ray at {where}: {str(exc).splitlines()[0][:200]}") from exc
