#!/usr/bin/env python
"""Run SCALE-Sim 3.0.0 programmatically on one (topology, config) pair and print JSON.

Usage:
  /tmp/scalesim-venv/bin/python /tmp/scalesim-study/run_one.py --topology X.csv --config Y.cfg
        [--gemm] [--outdir DIR] [--save-traces] [--layout L.csv] [--verbose]

stdout: a single JSON object:
  {"topology":..., "config":..., "wall_s": total seconds (incl. parsing + report writing),
   "layers": [ {layer_id, name, total_cycles_incl_prefetch, total_cycles, stall_cycles,
                overall_util_pct, mapping_eff_pct, compute_util_pct,
                avg_*_bw ..., sram_*/dram_* start/stop/count ..., wall_s}, ... ],
   "report_dir": dir where COMPUTE_REPORT.csv etc. were written}
All scalesim chatter is redirected to stderr so stdout is pure JSON.
"""
import argparse, contextlib, json, os, sys, tempfile, time


def _num(x):
    try:
        import numpy as np
        if isinstance(x, np.generic):
            x = x.item()
    except Exception:
        pass
    if isinstance(x, float) and x.is_integer():
        return int(x)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--topology', required=True)
    ap.add_argument('--config', required=True)
    ap.add_argument('--gemm', action='store_true', help='topology is in M,N,K format')
    ap.add_argument('--layout', default='', help='layout csv (a header-only dummy is made if omitted)')
    ap.add_argument('--outdir', default='', help='where reports go (default: temp dir, deleted)')
    ap.add_argument('--save-traces', action='store_true')
    ap.add_argument('--verbose', action='store_true')
    a = ap.parse_args()

    t_start = time.perf_counter()
    real_stdout = sys.stdout
    tmp = None
    outdir = a.outdir
    if not outdir:
        tmp = tempfile.TemporaryDirectory(prefix='scalesim_run_')
        outdir = tmp.name
    os.makedirs(outdir, exist_ok=True)
    layout = a.layout
    if not layout:
        layout = os.path.join(outdir, '_dummy_layout.csv')
        with open(layout, 'w') as f:
            f.write('Layer name, dummy,\n')   # header only: custom layouts are disabled in cfg

    with contextlib.redirect_stdout(sys.stderr):
        from scalesim.scale_sim import scalesim
        import scalesim.single_layer_sim as sls
        layer_wall = {}
        orig_run = sls.single_layer_sim.run

        def timed_run(self):
            t0 = time.perf_counter()
            orig_run(self)
            layer_wall[self.layer_id] = time.perf_counter() - t0
        sls.single_layer_sim.run = timed_run

        s = scalesim(save_disk_space=not a.save_traces, verbose=a.verbose,
                     config=os.path.abspath(a.config), topology=os.path.abspath(a.topology),
                     layout=os.path.abspath(layout), input_type_gemm=a.gemm)
        s.run_scale(top_path=outdir)

        cfg = s.config
        sparse = bool(cfg.sparsity_support)
        layers = []
        for lid, lo in enumerate(s.runner.single_layer_sim_object_list):
            c = lo.get_compute_report_items()
            b = lo.get_bandwidth_report_items()
            d = lo.get_detail_report_items()
            row = {'layer_id': lid, 'name': s.topo.get_layer_name(lid),
                   'total_cycles_incl_prefetch': c[0], 'total_cycles': c[1],
                   'stall_cycles': c[2], 'overall_util_pct': c[3],
                   'mapping_eff_pct': c[4], 'compute_util_pct': c[5]}
            bnames = ['avg_ifmap_sram_bw', 'avg_filter_sram_bw'] + \
                     (['avg_filter_metadata_sram_bw'] if sparse else []) + \
                     ['avg_ofmap_sram_bw', 'avg_ifmap_dram_bw', 'avg_filter_dram_bw',
                      'avg_ofmap_dram_bw']
            row.update(dict(zip(bnames, b)))
            dnames = []
            for mem in ('sram', 'dram'):
                for op, acc in (('ifmap', 'reads'), ('filter', 'reads'), ('ofmap', 'writes')):
                    dnames += [f'{mem}_{op}_start_cycle', f'{mem}_{op}_stop_cycle',
                               f'{mem}_{op}_{acc}']
            row.update(dict(zip(dnames, d)))
            if sparse:
                sp = lo.get_sparse_report_items()
                row.update({'sparse_rep': cfg.sparsity_representation,
                            'original_filter_storage': sp[0],
                            'new_filter_storage': sp[1],
                            'filter_metadata_storage': sp[2]})
            row['wall_s'] = layer_wall.get(lid)
            layers.append({k: _num(v) for k, v in row.items()})

    res = {'topology': os.path.abspath(a.topology), 'config': os.path.abspath(a.config),
           'run_name': cfg.get_run_name(), 'dataflow': cfg.get_dataflow(),
           'array': list(cfg.get_array_dims()),
           'bw_mode': 'USER' if cfg.use_user_dram_bandwidth() else 'CALC',
           'bandwidths': list(cfg.bandwidths),
           'wall_s': time.perf_counter() - t_start,
           'report_dir': None if tmp else os.path.join(os.path.abspath(outdir), cfg.get_run_name()),
           'layers': layers}
    real_stdout.write(json.dumps(res) + '\n')
    real_stdout.flush()
    if tmp:
        tmp.cleanup()


if __name__ == '__main__':
    main()
