"""Where each permutation's Optuna study lives: a real database (default ``optuna.db`` beside the MLflow
SQLite database, or any RDB URL such as the tracking server's PostgreSQL), so a search can be opened
with Optuna's own tools (``optuna-dashboard``) and read by later studies. Only the driver writes it.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from har.errors import BadInput

OPTUNA_ENV = "HAR_OPTUNA_STORAGE"
_CREATE_ATTEMPTS = 5
ORPHANED = "orphaned: the driver died before Tune recorded this trial; a new trial replaced it"


def storage_url(flag: str | None, tracking_uri: str) -> str:
    """--optuna-storage, else $HAR_OPTUNA_STORAGE, else ``optuna.db`` beside a SQLite tracking database
    (``./optuna.db`` with a tracking server). SQLite paths are made absolute (a resumed driver, a Ray
    job started elsewhere)."""
    url = flag or os.environ.get(OPTUNA_ENV)
    if not url:
        folder = (
            Path(tracking_uri.removeprefix("sqlite:///")).parent
            if tracking_uri.startswith("sqlite:///")
            else Path()
        )
        url = f"sqlite:///{folder / 'optuna.db'}"
    if "://" not in url:
        raise BadInput(f"--optuna-storage {url!r}: expected a database URL, e.g. sqlite:///optuna.db or "
                       "postgresql://user@host/db")  # fmt: skip
    if url.startswith("sqlite:///"):
        url = f"sqlite:///{Path(url.removeprefix('sqlite:///')).expanduser().resolve()}"
    return url


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The database behind ``url`` (tables created on first use); an unusable URL is bad input."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per study created
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url)
        except sqlalchemy.exc.IntegrityError as exc:
            # Two drivers (a Slurm array's tasks) creating the tables of one new PostgreSQL database at
            # once: the loser's CREATE TABLE or version row collides; once the winner has committed,
            # the tables exist and a second try finds them.
            if attempt == _CREATE_ATTEMPTS - 1:
                raise BadInput(f"Optuna storage {url}: {_first_line(exc)}; pass --optuna-storage or set "
                               f"{OPTUNA_ENV}") from exc  # fmt: skip
            time.sleep(0.5 + random.random())
        except Exception as exc:  # SQLAlchemy: no driver, unreachable server, unwritable path
            raise BadInput(f"Optuna storage {url}: {_first_line(exc)}; pass --optuna-storage or set "
                           f"{OPTUNA_ENV}") from exc  # fmt: skip
    raise AssertionError("unreachable")


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def study_name(study: str, study_run: str, permutation: str) -> str:
    return f"{study}/{study_run}/{permutation}"


def fail_orphans(storage: optuna.storages.RDBStorage, name: str, known: set[str]) -> int:
    """Trials a killed driver asked for after Tune's last experiment snapshot stay RUNNING in the
    database (Tune replaced them); they become FAIL, marked as orphaned, as their MLflow runs are."""
    study = optuna.load_study(study_name=name, storage=storage)
    closed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("ray_trial_id") not in known:
            storage.set_trial_user_attr(trial._trial_id, "har_outcome", ORPHANED)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            closed += 1
    return closed
