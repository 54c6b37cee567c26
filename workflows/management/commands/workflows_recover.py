"""Repair and timers: expired leases, lost RQ jobs, due retries, due schedules. Safe to run in several copies."""

from django.core.management.base import BaseCommand

from workflows import checks
from workflows.runtime import recovery


class Command(BaseCommand):
    help = "Expire dead workers' leases, re-enqueue lost jobs and fire due timers (once, or --loop)."
    requires_system_checks = [checks.TAG]  # the app's checks; not the URLs' and admin's (``checks.TAG``)

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep running every WORKFLOWS['TICK_SECONDS']")

    def handle(self, *args, **options):
        if options["loop"]:
            self.stdout.write("recovery loop started")
            try:
                recovery.loop()
            except KeyboardInterrupt:
                pass
        else:
            recovery.sync_schedules()
            self.stdout.write(str(recovery.tick()))
