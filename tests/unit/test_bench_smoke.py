"""The benchmark harness end to end on a tiny size, so that ``make bench`` cannot rot. It asserts no time."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_bench__tiny_run_prints_and_saves_the_table(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    cmd = [sys.executable, "-m", "bench", "--size", "tiny", "--db", "sqlite", "--only",
           "throughput,scale,pages,admission,push", "--no-install", "--no-docs",
           "--results", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    table = (tmp_path / "latest.md").read_text()
    assert table in proc.stdout
    for row in ("workflows ÷ raw RQ, SimpleWorker", "step returns → next step starts", "commit → client has the frame",
                "10-step chain", "bytes stored per step", "runs list (/runs/)",
                "bytes stored per byte of user data",
                "pass admitting 10 steps, key_limit=1 per key"):  # fmt: skip
        assert row in table, row
    results = json.loads((tmp_path / "latest.json").read_text())
    sqlite = results["db"]["sqlite"]
    simple = sqlite["throughput"]["classes"]["SimpleWorker"]
    assert simple["failed_runs"] == 0
    assert simple["workflows_steps_per_s"][0] > 0 and simple["raw_jobs_per_s"][0] > 0
    assert len(simple["handoff"][0]["return_start"]) == 2 * 4  # 2 runs of 5 steps: 4 handoffs each
    storage = sqlite["scale"]["storage"]
    assert set(storage["bytes"]) == {"2", "4", "8"} and storage["bytes"]["8"] > storage["bytes"]["2"]
    assert sqlite["scale"]["amplification"]["ratio"] <= 2  # values stored once (34x before)
    assert "median_ms" in sqlite["pages"]["pages"]["runs list (/runs/)"]
    assert "p50" in results["push"] or "error" in results["push"]
    assert "p50" in results["push_held"] or "error" in results["push_held"]
    assert "committed like a worker's job" in table
