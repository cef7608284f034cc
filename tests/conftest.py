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


# Tests that start Ray (and `ray stop --force` clusters of their own) must not overlap. Under
# `make test` (pytest -n 2) they form one unit of work that a single xdist worker runs in order, while
# every other test is shared out on its own; they are collected first so the long unit starts at once.
RAY_MODULES = ("test_dvc.py", "test_faults.py", "test_tracking_server.py", "test_tune.py")


# tests of those modules that start no Ray (study-file checks, the data-only DVC pipeline): shared out
# like the rest. A new test in a Ray module joins the Ray unit unless it is named here: the safe default.
NO_RAY = ("test_shipped_studies_are_valid", "test_define_by_run_", "test_bad_study_file", "test_unknown_study_",
          "test_multi_objective_", "test_dvc_repro_and_param_change")  # fmt: skip


def _is_ray(nodeid: str) -> bool:
    module, _, name = nodeid.partition("::")
    return module.rsplit("/", 1)[-1] in RAY_MODULES and not name.startswith(NO_RAY)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:] = [i for i in items if _is_ray(i.nodeid)] + [i for i in items if not _is_ray(i.nodeid)]


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class RayTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "ray" if _is_ray(nodeid) else nodeid

    return RayTestsTogether(config, log)
