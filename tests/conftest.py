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
