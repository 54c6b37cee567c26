from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, registry  # noqa: F401  (registers the system checks)

        registry.autodiscover()
        from . import events, publish

        events.add_publisher(publish.publish)
