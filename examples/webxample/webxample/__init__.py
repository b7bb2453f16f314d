"""webxample: example Django project for zero-downtime deploys."""

__version__ = "1.0.0"
