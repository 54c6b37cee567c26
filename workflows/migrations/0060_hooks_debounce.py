"""Completion hooks (StepRun.hook) and debounced starts (Debounce)."""


import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('workflows', '0055_admission_controls'),
    ]

    operations = [
        migrations.AddField(
            model_name='steprun',
            name='hook',
            field=models.CharField(blank=True, default='', help_text="a completion hook's end: success, failure or finish", max_length=8),
        ),
        migrations.CreateModel(
            name='Debounce',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope', models.CharField(blank=True, default='', help_text='whose key, as for idempotency keys', max_length=64)),
                ('key', models.CharField(max_length=255)),
                ('due_at', models.DateTimeField(help_text='the run starts then, unless another start comes first')),
                ('deadline', models.DateTimeField(help_text='the run starts by then whatever comes (the max wait)')),
                ('starts', models.PositiveIntegerField(default=1, help_text='starts collapsed into the run so far')),
                ('run', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='debounce', to='workflows.run')),
                ('workflow', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='debounces', to='workflows.workflow')),
            ],
            options={
                'indexes': [models.Index(fields=['due_at'], name='workflows_debounce_due')],
                'constraints': [models.UniqueConstraint(fields=('workflow', 'scope', 'key'), name='workflows_debounce_key')],
            },
        ),
    ]
