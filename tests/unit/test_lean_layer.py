"""``live.lean_layer.preload``: a worker's channel layer without cryptography, unless the layer encrypts. Each case
runs in a fresh interpreter (this one has imported cryptography already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
import django
from django.conf import settings
django.setup()
if KEYS:
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["symmetric_encryption_keys"] = KEYS
from workflows.live import lean_layer
from channels.layers import get_channel_layer
preloaded = lean_layer.preload()
layer = get_channel_layer()
message = layer.serialize({"type": "run.event", "seq": 1})
assert layer.deserialize(message)["seq"] == 1
loaded = "cryptography.fernet" in sys.modules
from cryptography.fernet import Fernet  # what a step may import itself: still there
print(json.dumps([preloaded, loaded, layer._serializer.crypter is not None]))
"""


def probe(keys: list[str]) -> list[bool]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
    code = f"KEYS = {keys!r}\n{PROBE}"
    out = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_lean_layer__the_layer_publishes_without_cryptography_and_a_step_may_still_import_it():
    assert probe([]) == [True, False, False]


def test_lean_layer__a_layer_that_encrypts_loads_cryptography_as_before():
    assert probe(["a-secret"]) == [False, True, True]
