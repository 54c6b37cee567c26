"""Start a workflow from the command line, optionally waiting for its result."""

import json

from django.core.management.base import BaseCommand, CommandError

from workflows import WorkflowsError
from workflows.definition import registry


class Command(BaseCommand):
    help = "Start a run of a registered workflow: run_workflow NAME --input '{...}' [--wait SECONDS]"

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--input", default="null", help="JSON input")
        parser.add_argument("--key", help="idempotency key")
        parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the run to finish")

    def handle(self, *args, **options):
        try:
            data = json.loads(options["input"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--input is not valid JSON: {exc}") from None
        try:
            run = registry.get(options["name"]).start(data, idempotency_key=options["key"])
        except WorkflowsError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"run {run.pk} {run.status}")
        if options["wait"]:
            try:
                run = run.wait(options["wait"])
            except TimeoutError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                json.dumps({"id": run.pk, "status": run.status, "output": run.output, "error": run.error})
            )
