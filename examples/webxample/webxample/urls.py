"""URL configuration. /health is answered by HealthCheckMiddleware, not here."""

from django.urls import path

from webxample.pages import views

urlpatterns = [
    path("", views.home, name="home"),
]
