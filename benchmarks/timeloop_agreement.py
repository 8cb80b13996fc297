"""sparsesim's analytical model beside Timeloop's reference outputs on the public exercise fixtures:
dense VGG02 layer 5 on the Eyeriss-like array, and the Sparseloop gating example (AlexNet layer 3).

Usage: python benchmarks/timeloop_agreement.py [--reference tests/data/timeloop-reference]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from sparsesim import hardware
from sparsesim.cost.elementwise import DataSpaceSparsity, elementwise_costs
from sparsesim.workload import Geometry
from sparsesim.interop.timeloop import parse_stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_timeloop import alexnet_layer3_batch4, vgg02_layer5  # noqa: E402  (the same layer shapes as the tests)

LEVELS = {"e_mac": ("mac", "MACs"), "e_rf": ("psum_spad", "weights_spad", "ifmap_spad"), "e_buffer": ("shared_glb",),
          "e_noc": ("DummyBuffer",), "e_dram": ("DRAM",)}


def compare(name: str, hw_name: str, layers: pd.DataFrame, stats: Path, sparsity: DataSpaceSparsity) -> pd.DataFrame:
    hw = hardware.load(hw_name)
    mine = elementwise_costs(Geometry.from_layers(layers), hw, hardware.energy_table(hw.energy_table), sparsity)
    ref = parse_stats(stats)
    by_name = {lv.name: lv.energy_pj for lv in ref.levels}
    rows = [{"case": name, "figure": "cycles", "sparsesim": mine["cycles"].item(), "timeloop": ref.cycles}]
    for key, names in LEVELS.items():
        rows.append({"case": name, "figure": f"{key[2:]} energy (uJ)", "sparsesim": mine[key].item() / 1e6,
                     "timeloop": sum(by_name.get(n, 0.0) for n in names) / 1e6})
    rows.append({"case": name, "figure": "energy (uJ)", "sparsesim": mine["energy_pj"].item() / 1e6,
                 "timeloop": ref.energy_pj / 1e6})
    table = pd.DataFrame(rows)
    table["difference"] = (table["sparsesim"] / table["timeloop"] - 1).map(lambda v: f"{v:+.1%}" if v == v else "")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "timeloop-reference"),
                        help="folder with the two reference stats files (copies of ../shared/timeloop-reference)")
    args = parser.parse_args()
    ref = Path(args.reference)
    table = pd.concat([
        compare("VGG02 layer 5, dense", "eyeriss-timeloop", vgg02_layer5(),
                ref / "vgg02-layer5-dense.stats.txt", DataSpaceSparsity()),
        compare("AlexNet layer 3, gating", "eyeriss-sparseloop", alexnet_layer3_batch4(),
                ref / "alexnet-layer3-gating.stats.txt",
                DataSpaceSparsity(inputs=0.275, weights=0.346133, outputs=0.303)),
    ])
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))


if __name__ == "__main__":
    main()
