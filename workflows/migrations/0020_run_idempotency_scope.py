"""Idempotency keys per user: a key is unique per (workflow, the starting user, key), so that one user's key
neither blocks another's launch nor reveals that it exists. Starts without a user share the scope ''."""

from django.db import migrations, models
from django.db.models import Q
from django.db.models.functions import Cast


def scope_existing_keys(apps, schema_editor):
    Run = apps.get_model("workflows", "Run")
    Run.objects.filter(idempotency_key__isnull=False, created_by__isnull=False).update(
        idempotency_scope=Cast("created_by_id", models.CharField(max_length=64))
    )


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0010_agents_messages"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="idempotency_scope",
            field=models.CharField(
                blank=True, default="", help_text="whose key: the starting user's pk; '' without a user", max_length=64
            ),
        ),
        migrations.RemoveConstraint(
            model_name="run",
            name="workflows_run_unique_idempotency_key",
        ),
        migrations.RunPython(scope_existing_keys, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="run",
            constraint=models.UniqueConstraint(
                condition=Q(idempotency_key__isnull=False),
                fields=("workflow", "idempotency_scope", "idempotency_key"),
                name="workflows_run_unique_idempotency_key_scope",
            ),
        ),
    ]
