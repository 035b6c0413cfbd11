"""Audit events keep the actor's display name and UPN as they were, and how the action came.

The audit table refuses UPDATE and DELETE (0002, 0007): these are row triggers, and adding a column
with a constant default is an ALTER TABLE that fires none of them and (PostgreSQL 11+) rewrites no
row. Existing events read the new fields as "", which ``AuditEvent.canonical`` leaves out of the
hash, so their hashes still verify.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('provisioning', '0025_scientist_role'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='actor_name',
            field=models.CharField(blank=True, default='', help_text="The actor's display name when it happened", max_length=300),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='actor_upn',
            field=models.CharField(blank=True, default='', help_text="The actor's UPN (or email) when it happened", max_length=254),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='via',
            field=models.CharField(blank=True, choices=[('web', 'web'), ('api', 'API'), ('cli', 'command line'), ('system', 'system')], default='', help_text='How the action came', max_length=10),
        ),
    ]
