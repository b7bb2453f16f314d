from django.db import models


class Greeting(models.Model):
    """A line of text shown on the home page."""

    text = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.text


class Job(models.Model):
    """A unit of background work: queued by POST /jobs/, done by the `process_jobs` worker."""

    QUEUED, RUNNING, DONE = "queued", "running", "done"
    state = models.CharField(max_length=10, default=QUEUED, db_index=True)
    payload = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    done_by = models.CharField(max_length=100, blank=True)
    done_at = models.DateTimeField(null=True)


class JobRun(models.Model):
    """One row each time a worker finishes a job: a job done twice has two rows."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs")
    release = models.CharField(max_length=100)
    pid = models.IntegerField()
    finished_at = models.DateTimeField(auto_now_add=True)


class Tick(models.Model):
    """One row per beat of the `tick` singleton: two overlapping singletons would interleave."""

    release = models.CharField(max_length=100)
    pid = models.IntegerField()
    at = models.DateTimeField(auto_now_add=True, db_index=True)


class SetupRun(models.Model):
    """One row each time the `record_setup` once-per-app command runs."""

    release = models.CharField(max_length=100)
    at = models.DateTimeField(auto_now_add=True)
