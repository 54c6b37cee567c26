from django.db import migrations, models

HELP = "a large {} stored once: where it is (store.values); {} is null"


class Migration(migrations.Migration):
    dependencies = [("workflows", "0020_run_idempotency_scope")]

    operations = [
        migrations.AddField(
            model_name="run",
            name="output_ref",
            field=models.PositiveBigIntegerField(blank=True, null=True, help_text=HELP.format("output", "output")),
        ),
        migrations.AddField(
            model_name="steprun",
            name="input_ref",
            field=models.PositiveBigIntegerField(blank=True, null=True, help_text=HELP.format("input", "input")),
        ),
        migrations.AddField(
            model_name="steprun",
            name="output_ref",
            field=models.PositiveBigIntegerField(blank=True, null=True, help_text=HELP.format("output", "output")),
        ),
    ]
