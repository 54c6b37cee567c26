"""``bench.hotpath``'s settings: the bench's, with ``EAGER_SECONDS`` from the environment (0: one job per step)."""

import os

from bench.settings import *  # noqa: F403
from bench.settings import WORKFLOWS

WORKFLOWS = {**WORKFLOWS, "EAGER_SECONDS": float(os.environ.get("WORKFLOWS_EAGER_SECONDS", "0"))}
