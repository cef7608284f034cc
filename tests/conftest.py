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


# Tests that start Ray (they also `ray stop --force` clusters of their own) run one after another in
# one xdist worker; every other test is shared out to the other worker (`make test`: -n 2 --dist
# loadgroup). They are put first so that the long group starts at once.
RAY_MODULES = ("test_tune.py", "test_faults.py", "test_tracking_server.py", "test_dvc.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ray, rest = [], []
    for item in items:
        if item.path.name in RAY_MODULES:
            item.add_marker(pytest.mark.xdist_group("ray"))
            ray.append(item)
        else:
            rest.append(item)
    items[:] = ray + rest
