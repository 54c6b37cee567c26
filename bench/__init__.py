"""Benchmarks: throughput, latency and scale of workflows, side by side with raw RQ, Celery and DBOS.

``python -m bench`` (``make bench``) starts what it needs, measures every comparison side by side in one run
(repetitions interleaved, CPU time per step beside wall time: ``bench.compare``) and prints one markdown table
(``bench.table``), saved under ``bench/results/``. Benchmarks are not tests: nothing here asserts a
time. See ``bench/run.py`` for the options.
"""
