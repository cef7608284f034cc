"""Where a study runs: the Ray cluster it starts or joins, and Tune's storage for trial checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import ray

from har.errors import HarError

DEFAULT_STORAGE = Path("runs") / "tune"
STORAGE_ENV = "HAR_STORAGE_PATH"


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
