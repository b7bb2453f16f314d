from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "webxample.pages"
    label = "pages"
    verbose_name = "webxample pages"
