"""Peer engines, each run in a virtualenv of its own (``var/bench/peers-venv``: Celery pins python-dateutil
below the version the project uses, so peers never go into the project's environment).

Each module is a driver: ``python -m bench.peers.NAME --out FILE ...`` starts 2 worker processes, warms up,
runs the repetitions, stops the workers and writes ``{"steps_per_s": [...], "note": ...}``.
"""
