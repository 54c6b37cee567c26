"""The app's configuration: at start-up it connects the layers' ports and imports every app's ``flows``."""

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Wire the layers' ports, derive what the project did not configure, then import every app's flows."""
        from django.utils.module_loading import autodiscover_modules

        from . import checks, conf, engine, metrics, tracing  # noqa: F401  (checks: registers the system checks)
        from .agents import checks as agent_checks  # noqa: F401  (agent paths, resolved by manage.py check)
        from .agents import sinks
        from .definition import ports
        from .engine import dispatch, publication
        from .live import sender, tokens
        from .runtime import dispatch as rq_dispatch
        from .store import journal

        ports.connect(engine)  # Workflow.start(), ctx.log(), run.cancel()... reach the engine
        journal.connect_publisher(publication.publish)  # committed events, held within a job...
        publication.add_sink(sender.publish)  # ...go to the channel layer
        publication.add_sink(metrics.publish)  # ...are counted (WORKFLOWS["METRICS"])
        publication.add_sink(tracing.publish)  # ...and a run that ended gets its span (an OTel SDK configured)
        sinks.add_sink(tokens.publish)  # an agent's streamed text goes to its run's group as it comes
        dispatch.connect(rq_dispatch.enqueue)  # queued steps become RQ jobs
        dispatch.connect_stats(rq_dispatch.queue_stats)  # what the queues hold, for the operations page
        try:
            if not hasattr(settings, "RQ_QUEUES"):
                settings.RQ_QUEUES = conf.rq_queues()
            if not hasattr(settings, "CHANNEL_LAYERS"):
                settings.CHANNEL_LAYERS = conf.channel_layers()
        except ImproperlyConfigured:
            pass  # an invalid WORKFLOWS setting: the system checks say what is wrong, with the fix
        autodiscover_modules("flows")
