"""The app's models, for Django's app registry (``workflows.models``); they are defined in ``store.models``."""

from .store.models import *  # noqa: F403
from .store.models import __all__ as _models
from .store.scheduling import *  # noqa: F403
from .store.scheduling import __all__ as _scheduling

__all__ = [*_models, *_scheduling]
