"""The app's models, for Django's app registry (``workflows.models``); they are defined in ``store.models``."""

from .store.models import *  # noqa: F403
from .store.models import __all__  # noqa: F401
