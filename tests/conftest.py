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


# Tests that start Ray run in two serial units of work under `make test` (pytest -n 2), one per xdist
# worker, while every other test is shared out on its own: the local-Ray studies (each driver starts a
# private Ray of its own) and the multi-node cluster tests of test_faults.py (`ray start` clusters on
# 127.0.0.1, each stopped by killing its own session's processes, never `ray stop --force`). Ray tests
# are collected first so that the two long units start at once.
RAY_MODULES = ("test_dvc.py", "test_faults.py", "test_ray_jobs.py", "test_tracking_server.py", "test_tune.py")
CLUSTER_MODULES = ("test_faults.py", "test_ray_jobs.py")


# tests of those modules that start no Ray (study-file checks, the data-only DVC pipeline): shared out
# like the rest. A new test in a Ray module joins a Ray unit unless it is named here: the safe default.
NO_RAY = ("test_shipped_studies_are_valid", "test_define_by_run_", "test_bad_study_file", "test_unknown_study_",
          "test_multi_objective_", "test_dvc_repro_and_param_change")  # fmt: skip


def _ray_unit(nodeid: str) -> str | None:
    """``ray-cluster``, ``ray-local`` or None (a test that starts no Ray)."""
    module, _, name = nodeid.partition("::")
    module = module.rsplit("/", 1)[-1]
    if module not in RAY_MODULES or name.startswith(NO_RAY):
        return None
    return "ray-cluster" if module in CLUSTER_MODULES else "ray-local"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = {"ray-local": 0, "ray-cluster": 1, None: 2}
    items[:] = sorted(items, key=lambda i: order[_ray_unit(i.nodeid)])  # stable: file order within a unit


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class RayTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _ray_unit(nodeid) or nodeid

    return RayTestsTogether(config, log)
