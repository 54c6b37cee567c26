"""Run an RQ worker on the pools' queues (forking Worker or SimpleWorker, from WORKFLOWS['WORKER_CLASS']), in the
version of that class that shuts down gracefully on SIGTERM and reports a dead work horse at once
(``workflows.runtime.worker``)."""

import contextlib
import logging
import time

from django.core.management.base import BaseCommand
from django.db import connections
from django.utils.module_loading import import_string

from workflows import checks, conf, metrics
from workflows.live import lean_layer
from workflows.runtime import dispatch, heartbeats
from workflows.runtime.worker import graceful

log = logging.getLogger("workflows.worker")
RESTART_DELAY = 1.0


def retire(worker) -> None:
    """What RQ's teardown could not do while Redis was away: stop its pubsub thread, record its death."""
    thread = getattr(worker, "pubsub_thread", None)
    if thread is not None:
        thread.stop()
        thread.join(1)
    with contextlib.suppress(Exception):
        worker.pubsub.close()
    worker.register_death()  # lets the next loop register under the same name


class Command(BaseCommand):
    help = "Run an RQ worker for workflow steps; it outlives Redis restarts."
    requires_system_checks = [checks.TAG]  # the app's checks; not the URLs' and admin's (``checks.TAG``)

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", help="queues to serve (default: every pool's queue)")
        parser.add_argument("--worker-class", help="e.g. rq.worker.SimpleWorker (default: the setting)")
        parser.add_argument("--name", help="worker name")
        parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")

    def handle(self, *args, **options):
        metrics.metrics()  # with WORKFLOWS["METRICS"]: set up before forking, so that work horses share the directory
        lean_layer.preload()  # the channel layer without cryptography (6.6 MB), unless it encrypts
        cls = graceful(import_string(options["worker_class"]) if options["worker_class"] else conf.worker_class())
        queues = [dispatch.get_queue(q) for q in options["queues"] or conf.queue_names()]
        self.worker = None
        with heartbeats.beating("worker", self.beat_state):
            self.serve(cls, queues, options)

    def beat_state(self) -> dict:
        """The heartbeat's view of the worker: read from memory only (the thread must not wait on anything)."""
        worker = self.worker
        job = getattr(worker, "beat_job", None)
        return {
            "name": getattr(worker, "name", None),
            "queues": [q.name for q in getattr(worker, "queues", [])],
            "step_run_id": dispatch.step_run_of(job),
        }

    def serve(self, cls, queues, options) -> None:
        worker = None
        while True:
            connections.close_all()  # a forked work horse must not share the parent's database socket
            try:
                if worker is not None:
                    retire(worker)
                worker = self.worker = cls(
                    queues, connection=queues[0].connection, serializer=dispatch.JSONSerializer, name=options["name"]
                )
                worker.max_connection_wait_time = 5.0  # poll a stopped Redis every 5 s at most, not every 60 s
                worker.work(burst=options["burst"], logging_level="WARNING")
            except Exception as exc:  # Redis went away while RQ recorded a job, a birth or a death
                log.warning("worker %s: %s: %s", options["name"] or "", type(exc).__name__, exc)
            if options["burst"] or (worker is not None and (worker._stop_requested or worker._shutdown_requested_date)):
                return
            # RQ's work loop gives up on an error it does not handle (Redis lost mid-job): run it again. The step
            # it was running is safe: its outcome is in the database, or its lease expires and it runs again.
            log.warning("worker %s: restarting its work loop in %gs", options["name"] or "", RESTART_DELAY)
            time.sleep(RESTART_DELAY)
