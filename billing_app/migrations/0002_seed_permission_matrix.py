"""Seed the brief's permission matrix as the product default (DESIGN.md section 3)."""

from django.db import migrations


def seed(apps, schema_editor):
    from billing_app.policy_defaults import seed_default_policies

    seed_default_policies(apps)


def unseed(apps, schema_editor):
    apps.get_model("billing_app", "ActionPolicy").objects.filter(workspace=None).delete()
    apps.get_model("billing_app", "ApprovalRoute").objects.filter(workspace=None).delete()


class Migration(migrations.Migration):
    dependencies = [("billing_app", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
