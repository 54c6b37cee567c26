"""``bench.hotpath`` (with ``bench.floor``) end to end on a tiny size, so that the figures the README quotes cannot
rot: every part runs and reports. It asserts no time."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_bench_hotpath__tiny_run_reports_every_part_and_the_floor(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    out = tmp_path / "hotpath.json"
    cmd = [sys.executable, "-m", "bench.hotpath", "--db", "sqlite", "--reps", "1", "--runs", "4",
           "--handoff-runs", "2", "--items", "10", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    for line in ("steps/s one job per step", "CPU per step: ours", "raw RQ's own, enqueue -> body start",
                 "foreach gap p50", "the least durable database work, ORM", "ceiling of one job per step"):  # fmt: skip
        assert line in proc.stdout, line
    figures = json.loads(out.read_text().split("\n\n")[0])["sqlite"]
    assert figures["ours"][0] > 0 and figures["raw"][0] > 0 and figures["rq_start_p50"] > 0
    floor = figures["floor"]
    assert {"rq_job", "ours", "ours_unpublished", "least_orm", "least_sql"} <= set(floor)
    assert all(value > 0 for name in ("rq_job", "ours", "least_orm") for value in floor[name])
