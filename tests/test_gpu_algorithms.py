"""The conv algorithms a GPU's library offers (sparsesim.hardware.kinds.gpu_algorithms): each one's time on a
handmade conv computed by hand, the fastest one runs (dense layers and gathered tiles, cost model and
simulator alike) and pays for its extra kernels, Winograd only where it applies, bad lists refused."""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from sparsesim import hardware
from sparsesim.cli import main
from sparsesim.cost.estimate import block_work
from sparsesim.cost.latency import latency
from sparsesim.hardware import HardwareError
from sparsesim.hardware.kinds.gpu_algorithms import Algorithm
from sparsesim.hardware.kinds.gpu_tiles import Tile
from sparsesim.sim.gpu import simulate_gpu
from sparsesim.workload import Geometry, dense_work, from_masks, library_conv, synthetic, traffic
from sparsesim.workload.strategies import Kernel

TILE = Tile(128, 128, 8, 8, 2)


def gtx(*algorithms: Algorithm, tiles=None):
    hw = hardware.load("gtx1080ti")
    part = replace(hw.part, algorithms=(Algorithm("implicit-gemm"), *algorithms))
    return replace(hw, part=replace(part, tiles=tiles) if tiles is not None else part)


def times(hw, shape: str, work=None):
    geo = Geometry.from_layers(synthetic.shape_layers([shape]))
    w = work or dense_work(geo)
    moved = traffic(geo, hw, w)
    direct = latency(geo, hw, w, moved=moved)["t_bandwidth"]
    kind = hardware.kinds.of(hw)
    return kind.conv_times(geo, hw, w, direct, moved.bandwidth, library_conv(hw, w)).seconds.reshape(
        len(hw.part.algorithms), -1), moved


def test_fused_winograd_by_hand():
    """3x3, 128 -> 128 channels, a 16 x 16 map, F(2x2,3x3) at efficiency 0.5 in a 128 x 128 tile (8 warps, 2
    stages: 2 resident per SM by registers). 256 output pixels (whole 2x2 tiles), a reduction of (4/2)^2 x 128
    = 512 per pixel: 2 thread blocks of 128 x 128 x 512 MACs, one per SM, each at its SM's full rate (8 warps
    on 4 schedulers), halved by the efficiency. Its traffic (input once, output once, 16 x 128 x 128
    transformed filters once: one wave) is far below that. The filter-transform kernel reads 9 x 128 x 128
    weights and writes 16 x 128 x 128 at the layer's backing level (L2: the layer fits)."""
    hw = gtx(Algorithm("winograd", 2, TILE, 8, 0.5))
    seconds, moved = times(hw, "128,128,3,1,1,16,16")
    per_sm = hw.peak_macs_per_s / hw.units
    bw = hw.level("l2").rate
    assert float(np.asarray(moved.bandwidth).reshape(-1)[0]) == bw
    compute = 128 * 128 * 512 / per_sm / 0.5
    memory = (128 * 16 * 16 + 16 * 16 * 128 + 16 * 128 * 128) * 4 / bw
    assert memory < compute
    assert seconds[1, 0] == pytest.approx(compute + (9 + 16) * 128 * 128 * 4 / bw, rel=1e-12)


def test_nonfused_winograd_by_hand():
    """F(4x4,3x3) at efficiency 0.5, the GPU's SGEMM table cut to one 128 x 128 tile: 16 tiles of 4 x 4
    outputs; 36 batched GEMMs of (16 x 128) . (128 x 128), each one M tile (padded to 128 rows): 36 thread
    blocks, 2 on each of 8 SMs and 1 on 20 (two resident run at the SM's full rate: 2 per SM is one step of
    2 x 128^3 MACs); the input, filter and output transforms are passes at L2."""
    hw = gtx(Algorithm("winograd-nonfused", 4, None, 1, 0.5), tiles=(TILE,))
    seconds, _ = times(hw, "128,128,3,1,1,16,16")
    per_sm, bw = hw.peak_macs_per_s / hw.units, hw.level("l2").rate
    gemm = max(2 * 128 ** 3 / per_sm / 0.5, 36 * (16 * 128 + 128 * 128 + 16 * 128) * 4 / bw)
    passes = (128 * 256 + 36 * 16 * 128) + (9 + 36) * 128 * 128 + (36 * 16 * 128 + 128 * 256)
    assert seconds[1, 0] == pytest.approx(passes * 4 / bw + gemm, rel=1e-12)


def test_the_fastest_algorithm_runs_and_pays_for_its_kernels():
    """A 3x3 128 -> 128 conv on a 56 x 56 map (DeepBench's shapes, where cuDNN 6 runs Winograd on the 1080 Ti):
    the fitted fused Winograd beats the implicit GEMM, below even the direct-MAC peak; its filter-transform
    kernel is one more launch (5 us on the host, no dispatch: it runs inside the conv op), and TensorFlow's own
    filter transform around the cuDNN call another (5 us, and 2.6 us of GPU time)."""
    hw = hardware.load("gtx1080ti")
    geo = Geometry.from_layers(synthetic.shape_layers(["128,128,3,1,1,56,56"]))
    t = latency(geo, hw, dense_work(geo))
    seconds, _ = times(hw, "128,128,3,1,1,56,56")
    assert hw.part.framework_conv_kernels == 1 and hw.part.helper_kernel_s == pytest.approx(2.6e-6)
    assert t["algorithm"].item() == "winograd"
    assert t["t_algorithm"].item() == pytest.approx(seconds.min() + 2.6e-6, rel=1e-12)
    assert seconds.min() < t["t_bandwidth"].item() and t["t_algorithm"].item() < t["t_peak"].item()
    assert t["launches"].item() == 3
    assert t["t_launch"].item() == pytest.approx(3 * hw.part.launch_s + hw.part.dispatch_s, rel=1e-12)
    assert t["latency_s"].item() == pytest.approx(t["t_algorithm"].item() + 3 * hw.part.kernel_gap_s, rel=1e-12)


def test_a_library_conv_pays_its_helper_kernels_and_a_fused_kernel_does_not():
    """Implicit GEMM on the 1080 Ti as cuDNN 6 runs it (IMPLICIT_PRECOMP_GEMM): its offsets kernel, then the
    GEMM, and TensorFlow's filter transform before both: two helper kernels of 2.6 us each, 5 us each to
    launch (the conv op's dispatch once). A 1x1 conv (no Winograd) by hand; a GPU without helper kernels
    (H100) and the fused strategy's custom kernel pay none."""
    hw = hardware.load("gtx1080ti")
    geo = Geometry.from_layers(synthetic.shape_layers(["64,64,1,1,0,56,56"]))
    t = latency(geo, hw, dense_work(geo))
    assert t["algorithm"].item() == "implicit-gemm" and t["launches"].item() == 3
    assert t["t_algorithm"].item() == pytest.approx(t["t_bandwidth"].item() + 2 * 2.6e-6, rel=1e-12)
    assert t["t_launch"].item() == pytest.approx(3 * hw.part.launch_s + hw.part.dispatch_s, rel=1e-12)
    h100 = hardware.load("h100")
    t = latency(geo, h100, dense_work(geo))
    assert t["launches"].item() == 1 and t["t_algorithm"].item() == t["t_bandwidth"].item()
    layers = synthetic.shape_layers(["64,64,3,1,1,64,64"])
    mask = np.zeros((2, 64, 64), bool)
    mask[1, :16, :16] = True
    wl = from_masks("hand", layers, [mask], [8])
    geo = Geometry.from_layers(layers)
    fused = latency(geo, hw, block_work(geo, wl, Kernel("fused", mask_source="given")))
    assert (fused["t_algorithm"] == fused["t_bandwidth"]).all() and (fused["launches"].reshape(-1)[1] == 1)


def test_the_autotuner_times_the_implicit_gemm_with_its_offsets_kernel():
    """cuDNN's autotuner times the whole call, so implicit GEMM's offsets kernel counts in the choice: on a
    tiny 3x3 conv (3 -> 3 channels, 8 x 8) the implicit GEMM's tile time plus 2.6 us is above the fitted
    Winograd's (its fixed transform-kernel costs), so Winograd runs; with the helper kernels free the implicit
    GEMM does. TensorFlow's filter transform is added after the choice, the same for both."""
    hw = hardware.load("gtx1080ti")
    geo = Geometry.from_layers(synthetic.shape_layers(["3,3,3,1,1,8,8"]))
    seconds, _ = times(hw, "3,3,3,1,1,8,8")
    t = latency(geo, hw, dense_work(geo))
    assert seconds[0, 0] == pytest.approx(t["t_bandwidth"].item() + 2.6e-6, rel=1e-12)
    assert t["t_bandwidth"].item() < seconds[1, 0] < seconds[0, 0]
    assert t["algorithm"].item() == "winograd"
    assert t["t_algorithm"].item() == pytest.approx(seconds[1, 0] + 2.6e-6, rel=1e-12)
    free = replace(hw, part=replace(hw.part, helper_kernel_s=0.0))
    assert latency(geo, free, dense_work(geo))["algorithm"].item() == "implicit-gemm"


@pytest.mark.parametrize("shape", ["128,128,1,1,0,56,56", "128,128,3,2,1,56,56", "128,128,5,1,2,56,56"])
def test_winograd_only_for_3x3_stride_1(shape):
    seconds, _ = times(hardware.load("gtx1080ti"), shape)
    assert np.isfinite(seconds[0]).all() and np.isinf(seconds[1]).all()


def test_gathered_tiles_get_the_library_choice_and_a_fused_kernel_does_not():
    """The same active blocks: gather-scatter's conv is a library call on the batch of tiles (Winograd is
    timed on the 64 tiles of 16 x 16), the fused strategy's is a custom kernel (implicit GEMM only). At
    128 channels and 16 K pixels the fitted Winograd wins on the tiles; at 4 tiles it does not."""
    hw = hardware.load("gtx1080ti")
    layers = synthetic.shape_layers(["128,128,3,1,1,256,256"])
    mask = np.zeros((2, 256, 256), bool)
    mask[0, :128, :128] = True
    mask[1, :32, :32] = True
    wl = from_masks("hand", layers, [mask], [16])
    geo = Geometry.from_layers(layers)
    for name, library in (("gather-scatter", True), ("fused", False)):
        w = block_work(geo, wl, Kernel(name, mask_source="given"))
        assert library_conv(hw, w) is library
        assert float(w.tile_h.reshape(-1)[0]) == 16 and w.blocks.reshape(-1).tolist() == [64, 4]
        seconds, _ = times(hw, "128,128,3,1,1,256,256", w)
        assert np.isfinite(seconds[1]).all() == library
    gs = latency(geo, hw, block_work(geo, wl, Kernel("gather-scatter", mask_source="given")))
    assert gs["algorithm"].reshape(-1).tolist() == ["winograd", "implicit-gemm"]
    # gather, conv, scatter; TF's filter transform; Winograd's filter transform or cuDNN's offsets kernel
    assert gs["launches"].reshape(-1).tolist() == [5, 5]


def test_gpus_with_implicit_gemm_alone_keep_the_tile_model_bit_for_bit():
    for name in ("h100", "h200", "a100", "orin"):
        hw = hardware.load(name)
        assert [a.name for a in hw.part.algorithms] == ["implicit-gemm"]
        geo = Geometry.from_layers(synthetic.shape_layers(["64,64,3,1,1,56,56"]))
        t = latency(geo, hw, dense_work(geo))
        assert t["t_algorithm"].item() == t["t_bandwidth"].item() and t["algorithm"].item() == "implicit-gemm"


def test_the_simulator_runs_the_same_algorithm():
    hw = hardware.load("gtx1080ti")
    geo = Geometry.from_layers(synthetic.shape_layers(["128,128,3,1,1,56,56"]))
    w = dense_work(geo)
    r = simulate_gpu(geo, hw, w)
    t = latency(geo, hw, w)
    seconds, _ = times(hw, "128,128,3,1,1,56,56")
    assert float(r.conv_s.reshape(-1)[0]) == t["t_algorithm"].item() == pytest.approx(seconds[1, 0] + 2.6e-6, rel=1e-12)
    assert float(r.stalls["tail"].reshape(-1)[0]) == 0 and float(r.stalls["bandwidth"].reshape(-1)[0]) == 0
    assert float(r.seconds.reshape(-1)[0]) == pytest.approx(t["latency_s"].item(), rel=1e-12)


BAD = [("    - name: implicit-gemm  #", "    - name: direct-magic  #", "algorithms[0]"),
       ("      tile: [128, 128, 8, 8, 2]", "      tile: [128, 128]", "algorithms[1].tile"),
       ("      output_tile: 2 ", "      output_tile: 1 ", "algorithms[1].output_tile"),
       ("      efficiency: 0.", "      efficiency: -0.", "algorithms[1].efficiency"),
       ("      helper_kernels: 1 ", "      helper_kernels: -1 ", "algorithms[0].helper_kernels"),
       ("  framework_conv_kernels: 1 ", "  framework_conv_kernels: -1 ", "framework_conv_kernels"),
       ("  helper_kernel_us: 2.6 ", "  helper_kernel_us: -2.6 ", "helper_kernel_us")]


@pytest.mark.parametrize("old,new,key", BAD)
def test_a_bad_algorithm_list_fails_in_one_line(tmp_path, capsys, old, new, key):
    text = (hardware.models_dir() / "gtx1080ti.yaml").read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(HardwareError, match=re.escape(f"gpu.{key}")):
        hardware.load(str(path))
    assert main(["hw", "show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err


def test_the_list_must_start_with_implicit_gemm(tmp_path):
    text = (hardware.models_dir() / "gtx1080ti.yaml").read_text()
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("    - name: implicit-gemm  #", "    - name: winograd\n      output_tile: 2\n"
                                 "      tile: [128, 128, 8, 8, 2]\n    - name: implicit-gemm  #", 1))
    with pytest.raises(HardwareError, match="starting with implicit-gemm"):
        hardware.load(str(path))
