"""The delta conv on the row bands its propagated locations reach: the whole-map conv's values, exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsesim.trace.gates import dilate_mask
from sparsesim.trace.row_bands import ROW_SHARE, add_conv_rows, banded, row_runs

GEOMETRIES = [dict(kernel_size=3, padding=1), dict(kernel_size=3, stride=2, padding=1),
              dict(kernel_size=3, padding=2, dilation=2), dict(kernel_size=1), dict(kernel_size=5, padding=0),
              dict(kernel_size=3, padding=1, groups=2), dict(kernel_size=(3, 1), padding=(1, 0))]


def test_row_runs_merge_close_runs():
    rows = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1], bool)
    assert row_runs(rows, gap=3) == [(1, 6), (11, 13)]
    assert row_runs(rows, gap=1) == [(1, 3), (5, 6), (11, 13)]
    assert row_runs(np.zeros(4, bool)) == [] and row_runs(np.ones(3, bool)) == [(0, 3)]


@pytest.mark.parametrize("geometry", GEOMETRIES)
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.lists(st.integers(0, 23), min_size=1, max_size=4))
@torch.inference_mode()
def test_the_bands_give_the_whole_maps_update_exactly(geometry, seed, rows):
    """Integer-valued float64: every sum is exact, so the bands must give the whole-map conv bit for bit,
    whatever rows (at the map's edges, close together, far apart) carry the delta."""
    g = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(4, 6, bias=False, **geometry).double()
    conv.weight.copy_(torch.randint(-3, 4, conv.weight.shape, generator=g).double())
    delta = torch.zeros(1, 4, 24, 17, dtype=torch.float64)
    for r in rows:
        delta[:, :, r, torch.randint(0, 17, (3,), generator=g)] = torch.randint(-5, 6, (4, 3), generator=g).double()
    reach = dilate_mask(delta.abs().sum(1, keepdim=True) > 0, conv)
    prev = torch.randint(-9, 10, (1, 6, *reach.shape[-2:]), generator=g).double()
    got = add_conv_rows(conv, delta, reach, prev)
    share = reach.any(dim=3).float().mean().item()
    assert (got is None) == (share > ROW_SHARE)
    if got is not None:
        assert torch.equal(got, prev + conv(delta)) and banded(conv)


def test_transposed_and_padded_modes_are_left_to_the_whole_map():
    assert not banded(nn.ConvTranspose2d(2, 2, 4, 2, 1))
    assert not banded(nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"))
    assert not banded(nn.Conv2d(2, 2, 3, padding="same"))
