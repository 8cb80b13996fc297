"""Many videos and large sweeps on Ray: local by default, a cluster by address.

`tracing.trace_many` traces each video as an independent task on a pool of actors that load each model
once; `sweep.sweep` runs the cross product trace x hardware x energy table as tasks and gathers one
table, in the same order (so with the same rows, bit for bit) as a serial run. Tasks are retried when a
worker dies; traces are written atomically and a re-run skips complete ones, so a job survives restarts.
"""
