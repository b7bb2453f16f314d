from django.db import models


class Greeting(models.Model):
    """A line of text shown on the home page."""

    text = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.text
