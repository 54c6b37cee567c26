"""Settings of the multi-host test's processes: the test settings, plus this app (its workflows) and its pools.

``cluster`` holds 3 steps at once across every host (scenario 1 checks it); ``on_a`` is served by host A's
workers alone (queue ``host_a``), so that a run is known to execute on host A (scenario 2, and A's rejoining).
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, WORKFLOWS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.cluster"]
WORKFLOWS = {
    **WORKFLOWS,
    "POOLS": {
        **WORKFLOWS["POOLS"],
        "cluster": {"queue": "default", "max_parallel": 3},
        "on_a": {"queue": "host_a", "max_parallel": 10},
    },
}
