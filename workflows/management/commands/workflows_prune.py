"""Delete old finished runs with their steps and events, in small batches (no long locks)."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from workflows.store.models import RUN_TERMINAL, Run, RunEvent, StepRun

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if not match:
        raise CommandError(f"--older-than takes a number and a unit (s, m, h, d, w), e.g. 30d; got {text!r}")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = "Delete finished runs older than --older-than (e.g. 30d), with their steps and events, in batches."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="age of the run's end: 90m, 12h, 30d, 8w")
        parser.add_argument(
            "--status",
            action="append",
            choices=[str(s) for s in RUN_TERMINAL],
            help="only runs with this status (repeatable; default: every finished status)",
        )
        parser.add_argument("--batch", type=int, default=500, help="runs per transaction")
        parser.add_argument("--dry-run", action="store_true", help="only count")

    def handle(self, *args, **options):
        cutoff = timezone.now() - parse_age(options["older_than"])
        statuses = options["status"] or list(RUN_TERMINAL)
        # a child run goes with its top-level run: select top-level runs only, then their descendants
        runs = Run.objects.filter(status__in=statuses, finished_at__lt=cutoff, parent_step__isnull=True)
        if options["dry_run"]:
            self.stdout.write(f"{runs.count()} runs would be deleted")
            return
        deleted = 0
        while True:
            ids = list(runs.order_by("pk").values_list("pk", flat=True)[: options["batch"]])
            if not ids:
                break
            with transaction.atomic():
                family = set(ids)
                frontier = ids
                while frontier:  # nested child runs, any depth
                    frontier = list(Run.objects.filter(parent_step__run_id__in=frontier).values_list("pk", flat=True))
                    family.update(frontier)
                RunEvent.objects.filter(run_id__in=family).delete()
                Run.objects.filter(pk__in=family).update(parent_step=None, restarted_from=None)
                Run.objects.filter(restarted_from__in=family).update(restarted_from=None)
                StepRun.objects.filter(run_id__in=family).delete()
                Run.objects.filter(pk__in=family).delete()
            deleted += len(family)
        self.stdout.write(f"deleted {deleted} runs")
