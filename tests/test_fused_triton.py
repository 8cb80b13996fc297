"""The fused Triton kernel against the float64 dense reference, run by Triton's interpreter on the CPU.

TRITON_INTERPRET must be set before the kernel is decorated (when `fused_triton` is first imported);
nothing else in the suite imports it. Triton 3.6.0's interpreter turns a runtime integer (the kernel's
K-loop bound) into an index with `int()` of a one-element array, which NumPy 2.4 refuses (triton issue
#9171); the fixture applies the upstream one-line fix (PR #9172, released in 3.7.0) for these tests.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ["TRITON_INTERPRET"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import triton.runtime.interpreter as interpreter  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from kernel_cases import CONV_CASES, random_state, relative_error  # noqa: E402

from sparsesim.errors import SparsesimError  # noqa: E402
from sparsesim.measure import fused_triton, kernels, runner  # noqa: E402
from sparsesim.measure.kernels import ConvShape  # noqa: E402
from sparsesim.measure.strategies import STRATEGIES  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def interpreter_index_fix():
    original = interpreter._patch_lang_tensor

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))
    interpreter._patch_lang_tensor = patched
    yield
    interpreter._patch_lang_tensor = original


def corners_of(mask: torch.Tensor, block: int) -> torch.Tensor:
    blocks = F.max_pool2d(mask[None, None].float(), block, block, ceil_mode=True)[0, 0]
    return (torch.nonzero(blocks > 0) * block).to(torch.int32).contiguous()


def run_fused(shape: ConvShape, state: kernels.LayerState, block: int) -> torch.Tensor:
    z = state.z_prev.clone()
    fused_triton.fused_update(state.x, state.x_prev, fused_triton.gemm_weight(state.weight), z,
                              corners_of(state.mask, block), block, shape.k, shape.stride, shape.padding, shape.dilation)
    return z


@settings(max_examples=30, deadline=None)
@given(**CONV_CASES)
def test_fused_kernel_matches_the_float64_dense_reference(block, **case):
    made = random_state(**case)
    if made is None:
        return
    shape, state = made
    assert relative_error(run_fused(shape, state, block), kernels.reference(shape, state, block)) < 1e-5


def test_fused_kernel_leaves_inactive_blocks_untouched_and_handles_fp16():
    shape = ConvShape(5, 18, 3, 1, 1, 1, 13, 11)
    mask = torch.zeros(13, 11, dtype=torch.bool)
    mask[0, 0] = mask[12, 10] = mask[6, 5] = True      # three blocks, two of them cropped at the edges
    for dtype, tolerance in ((torch.float32, 1e-6), (torch.float16, 1e-2)):
        state = kernels.make_state(shape, mask, "cpu", dtype, 3)
        out = run_fused(shape, state, 4)
        ref = kernels.reference(shape, state, 4)
        assert out.dtype == dtype
        assert float((out.double() - ref).norm() / ref.norm()) < tolerance
        active = F.max_pool2d(mask[None, None].float(), 4, 4, ceil_mode=True).repeat_interleave(4, -2) \
            .repeat_interleave(4, -1)[..., :13, :11] > 0
        assert torch.equal(out[~active.expand_as(out)], state.z_prev[~active.expand_as(out)])  # bit for bit
        assert not torch.equal(out, state.z_prev)


def test_an_empty_block_list_launches_nothing():
    shape = ConvShape(3, 4, 3, 1, 1, 1, 8, 8)
    state = kernels.make_state(shape, torch.zeros(8, 8, dtype=torch.bool), "cpu", torch.float32, 0)
    assert torch.equal(run_fused(shape, state, 4), state.z_prev)


def test_the_fused_strategy_is_checked_and_timed_through_the_runner():
    """The runner's path for `fused` (block list from the gate, the kernel, the check against the dense
    reference, steps reduce + conv, e2e and total) on a tiny case, the kernel interpreted."""
    shape = ConvShape(4, 6, 3, 2, 1, 1, 12, 12)
    mask = runner.block_mask(shape, 2, 0.5, np.random.default_rng(0))
    case = runner.Case("tiny", shape, 2, "synthetic", mask)
    options = runner.MeasureOptions(repeat=1, warmup=0, rotate=1, kernels=("dense", "fused"))
    rows = runner.measure_case(case, options, {})
    fused = {r["step"]: r for r in rows if r["kernel"] == "fused"}
    assert list(fused) == ["reduce", "conv", "e2e", "total"]
    assert fused["total"]["median_s"] == pytest.approx(fused["reduce"]["median_s"] + fused["conv"]["median_s"])
    assert STRATEGIES["fused"].cuda_only


def test_a_wrong_fused_result_is_caught(monkeypatch):
    monkeypatch.setattr(fused_triton, "BLOCK_K", 16)   # still right: a different K step
    shape = ConvShape(4, 6, 3, 1, 1, 1, 10, 10)
    case = runner.Case("tiny", shape, 4, "synthetic", torch.ones(10, 10, dtype=torch.bool))
    options = runner.MeasureOptions(repeat=1, warmup=0, rotate=1, kernels=("fused",))
    assert runner.measure_case(case, options, {})
    monkeypatch.setattr(fused_triton, "gemm_weight", lambda w: -w.reshape(w.shape[0], -1).t().contiguous())
    with pytest.raises(SparsesimError, match="fused result differs from dense"):
        runner.measure_case(case, options, {})


AHEAD = r'''
import json, sys
import torch, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from sparsesim.measure import fused_triton as ft
out = {}
for dtype in ("fp32", "fp16"):
    sig = {"x_ptr": f"*{dtype}", "xp_ptr": f"*{dtype}", "w_ptr": f"*{dtype}", "z_ptr": f"*{dtype}", "corners_ptr": "*i32",
           **{n: "i32" for n in ft.SIZES}}
    const = ft.constants(3, 2, 1, 1, 24, {"fp32": torch.float32, "fp16": torch.float16}[dtype])  # as a launch has them
    sig.update({n: "constexpr" for n in const})
    kernel = triton.compile(ASTSource(ft._fused_update, sig, const), target=GPUTarget("cuda", 90, 32))
    ptx = kernel.asm["ptx"]
    out[dtype] = {"sm_90": ".target sm_90" in ptx, "mma": ptx.count("mma."), "fma": ptx.count("fma.rn.f32"),
                  "shared": kernel.metadata.shared, "cubin": len(kernel.asm["cubin"])}
json.dump(out, sys.stdout)
'''


def test_the_kernel_compiles_for_hopper_fp32_without_tensor_cores_fp16_with_them(tmp_path):
    """Compiled ahead for sm_90 (the H100/H200) by Triton's own ptxas, no GPU needed, in a process without
    the interpreter: fp32 runs on FMAs (IEEE, no TF32: the fair baseline), fp16 on tensor-core MMAs, and the
    shared memory fits a Hopper SM (227 KB)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", AHEAD], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["fp32"]["sm_90"] and result["fp32"]["mma"] == 0 and result["fp32"]["fma"] > 0
    assert result["fp16"]["sm_90"] and result["fp16"]["mma"] > 0
    assert all(0 < r["shared"] <= 227 * 1024 and r["cubin"] > 0 for r in result.values())
