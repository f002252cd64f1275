"""Create the three role groups (jobs.roles): Support, Engineer, Admin. Idempotent."""

from django.db import migrations

# Copied from jobs.roles.ROLE_ORDER on purpose: a migration must not change when app code does.
ROLES = ("Support", "Engineer", "Admin")


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("jobs", "0002_jobnote"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
