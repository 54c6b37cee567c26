"""The browser client (``workflows/static/workflows/live.js``), tested with node's test runner on a fake socket."""

import shutil
import subprocess
from pathlib import Path

from tests.conftest import skip_or_fail

BASE_DIR = Path(__file__).resolve().parents[2]


def test_live_js__client_protocol_rules():
    if shutil.which("node") is None:
        skip_or_fail("node is not installed")
    result = subprocess.run(["node", "--test", "tests/js/"], cwd=BASE_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
