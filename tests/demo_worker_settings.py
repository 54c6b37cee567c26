"""The demo project's settings (its flows: the support desk's agent workflow too) for a worker started by a test,
plus ``tests.probe``: the workflow that reports what the worker imported. Not the test app: it imports pydantic-ai.
"""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.probe"]
