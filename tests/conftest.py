"""Shared test settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: the CI machine has 2 shared cores, and small LSTMs slow down badly when
    more threads than free cores spin (measured: 0.2 s vs 13-25 s per epoch)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Tests that start Ray run in three serial units of work under `make test` (pytest -n 2) while every
# other test is shared out on its own: the local-Ray studies (each driver starts a private Ray of its
# own), the multi-node cluster tests (`ray start` clusters on 127.0.0.1, each stopped by killing its own
# session's processes, never `ray stop --force`) and the Slurm jobs (each starts Ray on the Slurm node).
# Ray tests are collected first so that the long units start first.
RAY_MODULES = ("test_dvc.py", "test_faults.py", "test_object_store.py", "test_ray_jobs.py", "test_slurm.py",
               "test_tracking_server.py", "test_tune.py")  # fmt: skip
CLUSTER_MODULES = ("test_faults.py", "test_ray_jobs.py")
SLURM_MODULES = ("test_slurm.py",)  # each job starts its own Ray on the Slurm node


# tests of those modules that start no Ray (study-file checks, the data-only DVC pipeline): shared out
# like the rest. A new test in a Ray module joins a Ray unit unless it is named here: the safe default.
NO_RAY = ("test_shipped_studies_are_valid", "test_define_by_run_", "test_bad_study_file", "test_unknown_study_",
          "test_multi_objective_", "test_dvc_repro_and_param_change", "test_dvc_remote_on_s3",
          "test_drivers_opening_one_new_optuna_database", "test_permutations_option_", "test_search_settings_",
          "test_push_to_the_default_remote")  # fmt: skip


def _ray_unit(nodeid: str) -> str | None:
    """``ray-cluster``, ``ray-local``, ``slurm`` or None (a test that starts no Ray)."""
    module, _, name = nodeid.partition("::")
    module = module.rsplit("/", 1)[-1]
    if module not in RAY_MODULES or name.startswith(NO_RAY):
        return None
    if module in SLURM_MODULES:
        return "slurm"
    return "ray-cluster" if module in CLUSTER_MODULES else "ray-local"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = {"ray-local": 0, "ray-cluster": 1, "slurm": 2, None: 3}
    items[:] = sorted(items, key=lambda i: order[_ray_unit(i.nodeid)])  # stable: file order within a unit


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class RayTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _ray_unit(nodeid) or nodeid

    return RayTestsTogether(config, log)
