"""The browser client (static/workflows/live.js), unit-tested with node's test runner against a fake socket."""

import shutil
import subprocess
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_live_js__client_protocol_rules():
    result = subprocess.run(["node", "--test", "tests/js/"], cwd=BASE_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
