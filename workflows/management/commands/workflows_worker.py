"""Run an RQ worker on the pools' queues (forking Worker or SimpleWorker, from WORKFLOWS['WORKER_CLASS'])."""

from django.core.management.base import BaseCommand
from django.db import connections
from django.utils.module_loading import import_string

from workflows import conf, dispatch


class Command(BaseCommand):
    help = "Run an RQ worker for workflow steps."

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", help="queues to serve (default: every pool's queue)")
        parser.add_argument("--worker-class", help="e.g. rq.worker.SimpleWorker (default: the setting)")
        parser.add_argument("--name", help="worker name")
        parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")

    def handle(self, *args, **options):
        cls = import_string(options["worker_class"]) if options["worker_class"] else conf.worker_class()
        queues = [dispatch.get_queue(q) for q in options["queues"] or conf.queue_names()]
        connections.close_all()  # a forked work horse must not share the parent's database socket
        worker = cls(queues, connection=queues[0].connection, serializer=dispatch.JSONSerializer, name=options["name"])
        worker.work(burst=options["burst"], logging_level="WARNING")
