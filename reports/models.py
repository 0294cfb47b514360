"""R11.3: reports over long periods, run by a worker behind a progress page."""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class JobState(models.TextChoices):
    PENDING = "pending", _("waiting for a worker")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class ReportJob(models.Model):
    """R11.3: one report over a period longer than REPORTS_SYNC_DAYS, run as a Celery task;
    its result (rows and totals, exact) is kept to be shown and downloaded."""

    name = models.CharField(_("report"), max_length=40)
    # The filters as the page's form took them (its GET query), checked again by the task.
    params = models.JSONField(_("filters"), default=dict)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE,
                             related_name="+", verbose_name=_("user"))
    state = models.CharField(_("state"), max_length=10, choices=JobState.choices,
                             default=JobState.PENDING)
    result = models.JSONField(_("result"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("report job")
        verbose_name_plural = _("report jobs")

    def __str__(self):
        return f"{self.name} #{self.pk} ({self.state})"

    @property
    def done(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED)
