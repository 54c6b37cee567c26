"""Liveness probe for workers and recovery loops: exit 0 when a process of this host has beaten recently.

A container runs one process, so "this host's" is "this container's": the Compose file's health check of the worker
and recovery services (deploy/compose.yaml), or a Kubernetes exec liveness probe. It reads the heartbeats in Redis
(runtime/heartbeats.py); Redis unreachable is not the process's fault, so it answers 0 then, and says why.
"""

import socket

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from workflows import checks
from workflows.runtime import heartbeats


class Command(BaseCommand):
    requires_system_checks = [checks.TAG]  # a probe every few seconds: not the URLs' and admin's checks
    help = "Exit 0 if a worker or recovery loop of this host (--kind, --pid to narrow) beat recently, else 1."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["worker", "recovery"], help="only this kind of process")
        parser.add_argument("--pid", type=int, help="only this process id")
        parser.add_argument("--host", default=socket.gethostname(), help="another host's (default: this one)")

    def handle(self, *args, kind=None, pid=None, host=None, **options):
        try:
            beats = [b for b in heartbeats.read(kind) if b.host == host and (pid is None or b.pid == pid)]
        except RedisError as exc:
            self.stdout.write(f"alive: Redis unreachable ({type(exc).__name__}), not this process's fault")
            return
        alive = [b for b in beats if b.alive]
        if not alive:
            ages = ", ".join(f"{b.kind} {b.pid}: {b.age:.0f} s ago" for b in beats) or "no heartbeat"
            raise CommandError(f"not alive on {host}: {ages}", returncode=1)
        self.stdout.write(", ".join(f"{b.kind} {b.pid} beat {b.age:.1f} s ago" for b in alive))
