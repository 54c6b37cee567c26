from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0050_schedules"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="priority",
            field=models.IntegerField(default=0, help_text="higher is admitted first (flow.start(priority=))"),
        ),
        migrations.AddField(
            model_name="steprun",
            name="priority",
            field=models.IntegerField(default=0, help_text="its run's priority, copied for admission"),
        ),
        migrations.AddField(
            model_name="steprun",
            name="concurrency_key",
            field=models.CharField(blank=True, help_text="computed once, when it became pending", max_length=200),
        ),
        migrations.AddField(
            model_name="steprun",
            name="key_limit",
            field=models.PositiveIntegerField(blank=True, help_text="slots its key may hold in its pool", null=True),
        ),
        migrations.AddField(
            model_name="pool",
            name="limit",
            field=models.PositiveIntegerField(blank=True, help_text="set at runtime; empty: max_parallel", null=True),
        ),
        migrations.AddField(
            model_name="pool",
            name="paused",
            field=models.BooleanField(default=False, help_text="a paused pool admits nothing; running steps finish"),
        ),
        migrations.AlterField(
            model_name="pool",
            name="max_parallel",
            field=models.PositiveIntegerField(default=10, help_text="from settings"),
        ),
        migrations.AddIndex(
            model_name="steprun",
            index=models.Index(fields=["pool", "concurrency_key", "status"], name="workflows_steprun_key"),
        ),
        migrations.AddIndex(
            model_name="steprun",
            index=models.Index(fields=["pool", "queued_at"], name="workflows_steprun_started"),
        ),
        migrations.AddIndex(
            model_name="steprun",
            index=models.Index(fields=["pool", "status", "priority"], name="workflows_steprun_priority"),
        ),
    ]
