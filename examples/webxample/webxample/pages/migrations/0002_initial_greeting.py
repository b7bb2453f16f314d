"""Data migration: create the greeting shown on the home page."""

from django.db import migrations

GREETING = "Hello from webxample"


def create_greeting(apps, schema_editor):
    Greeting = apps.get_model("pages", "Greeting")
    Greeting.objects.using(schema_editor.connection.alias).get_or_create(text=GREETING)


def delete_greeting(apps, schema_editor):
    Greeting = apps.get_model("pages", "Greeting")
    Greeting.objects.using(schema_editor.connection.alias).filter(text=GREETING).delete()


class Migration(migrations.Migration):
    dependencies = [("pages", "0001_initial")]

    operations = [migrations.RunPython(create_greeting, delete_greeting)]
