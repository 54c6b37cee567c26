"""HTTP through Django, websockets through Channels: login required and origins checked (``workflows.asgi``)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from workflows.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()
