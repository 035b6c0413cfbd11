"""The three personas exist as Django groups from the start."""

from django.db import migrations

PERSONAS = ("Admin", "Team Lead", "Data Scientist")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in PERSONAS:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
