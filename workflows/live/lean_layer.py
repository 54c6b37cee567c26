"""Worker processes publish to the channel layer without loading ``cryptography`` (~6.6 MB of resident memory).

channels-redis imports ``cryptography.fernet`` when its serializers load, whether or not the layer encrypts
(``symmetric_encryption_keys``), and cryptography is installed here (daphne needs it). In a worker that import was
two thirds of what its first steps added (``python -m bench.worker_imports --steps 100``). ``preload()`` loads the
serializers with cryptography hidden, when no layer asks for encryption, then un-hides it: a step that imports
cryptography itself still gets it; only channels-redis has taken note that it may not encrypt, which it does not.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings

HIDDEN = "cryptography.fernet"  # what pulls in the rest (hazmat, the Rust bindings); redis-py imports the package


def preload() -> bool:
    """Import channels-redis's serializers without cryptography; False (nothing done) if a layer encrypts, or they
    or cryptography are loaded already."""
    layers: dict[str, Any] = getattr(settings, "CHANNEL_LAYERS", None) or {}
    if any((layer.get("CONFIG") or {}).get("symmetric_encryption_keys") for layer in layers.values()):
        return False
    if "channels_redis.serializers" in sys.modules or HIDDEN in sys.modules:
        return False
    sys.modules[HIDDEN] = None  # importing it raises ImportError: what channels-redis expects without cryptography
    try:
        import channels_redis.serializers  # noqa: F401
    except ImportError:  # channels-redis is not installed: nothing to preload
        return False
    finally:
        del sys.modules[HIDDEN]
    return True
