"""Benchmarks: throughput, latency and scale of workflows, side by side with raw RQ, Celery and DBOS.

``python -m bench`` (``make bench``) starts what it needs, runs every scenario several times and prints one
markdown table, saved with a chart under ``bench/results/``. Benchmarks are not tests: nothing here asserts a
time. See ``bench/run.py`` for the options.
"""
