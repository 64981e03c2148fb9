"""Fixtures every test folder can use."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: the tiny models gain nothing from more, and on a two-core machine
    with other work running, OpenMP's barrier makes every small matmul wait out a scheduler slice
    (~16 ms instead of ~10 us). Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
