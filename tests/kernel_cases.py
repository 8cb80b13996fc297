"""Random small conv layers shared by the kernel tests: hypothesis strategies, and the state they make."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from sparsesim.measure import kernels
from sparsesim.measure.kernels import ConvShape

# cout up to 20 crosses the fused kernel's 16-channel N tile, cin * k * k up to 150 its 32-wide K step,
# maps up to 20 x 20 its 64-pixel M tile; blocks that do not divide the map leave edge blocks to crop
CONV_CASES = dict(cin=st.integers(1, 6), cout=st.integers(1, 20), k=st.sampled_from([1, 2, 3, 5]),
                  stride=st.sampled_from([1, 2]), pad=st.integers(0, 2), dilation=st.sampled_from([1, 2]),
                  h=st.integers(4, 20), w=st.integers(4, 20), block=st.sampled_from([1, 2, 3, 4, 8, 32]),
                  density=st.floats(0, 1), seed=st.integers(0, 1000))


def random_state(cin, cout, k, stride, pad, dilation, h, w, density, seed):
    """(shape, fp32 state with a random pixel mask of `density`), or None when the output is empty."""
    shape = ConvShape(cin, cout, k, stride, pad, dilation, h, w)
    if shape.out_h < 1 or shape.out_w < 1:
        return None
    mask = torch.from_numpy(np.random.default_rng(seed).random((shape.out_h, shape.out_w)) < density)
    return shape, kernels.make_state(shape, mask, "cpu", torch.float32, seed)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert out.shape == ref.shape
    return float((out.double() - ref).norm() / ref.norm())
