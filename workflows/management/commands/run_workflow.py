"""Start a workflow from the command line, optionally waiting for its result."""

import json

from django.core.management.base import BaseCommand, CommandError

from workflows import WorkflowsError
from workflows.definition import registry


class Command(BaseCommand):
    help = "Start a run of a registered workflow: run_workflow NAME --input '{...}' [--debounce KEY SECONDS] [--wait S]"

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--input", default="null", help="JSON input")
        parser.add_argument("--key", help="idempotency key")
        parser.add_argument(
            "--debounce", nargs=2, metavar=("KEY", "SECONDS"), help="starts with KEY within SECONDS are one run"
        )
        parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the run to finish")

    def handle(self, *args, **options):
        try:
            data = json.loads(options["input"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--input is not valid JSON: {exc}") from None
        debounce = None
        if options["debounce"]:
            key, seconds = options["debounce"]
            try:
                debounce = (key, float(seconds))
            except ValueError:
                raise CommandError(f"--debounce SECONDS must be a number, got {seconds!r}") from None
        try:
            flow = registry.get(options["name"])
            run = flow.start(data, idempotency_key=options["key"], **({"debounce": debounce} if debounce else {}))
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
