"""URL configuration. /health is answered by HealthCheckMiddleware unless
WEBXAMPLE_HEALTH_VIEW is set; then by the view, like most real projects do it."""

from django.urls import path

from webxample.pages import views

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("health/", views.health),
    path("jobs/", views.jobs, name="jobs"),
    path("ticks/", views.ticks, name="ticks"),
    path("slow/", views.slow, name="slow"),
    path("upload/", views.upload, name="upload"),
]
