"""``manage.py workflows …``: the ``workflows`` CLI (``workflows.cli``) from a project, with the same commands and
options (it talks to a server through the API, with ``WORKFLOWS_URL`` and ``WORKFLOWS_TOKEN``)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Drive workflows through the JSON API: list, start, show, follow, cancel, resume, send-event, retry, restart"

    def run_from_argv(self, argv: list[str]) -> None:  # the CLI parses its own arguments
        from ...cli import main

        sys.exit(main(argv[2:]))
