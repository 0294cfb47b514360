"""Observer profiles (R2.1) and the records they could not parse (R2.7)."""
import hashlib
from pathlib import Path

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from billing.models import Device

profile_name = RegexValidator(r"^[A-Za-z0-9]+$", "Letters and digits only.")


class SourceType(models.TextChoices):
    """R2.2: how records reach the system."""

    FOLDER = "folder", "folder"
    FTP_SERVER = "ftp_server", "FTP server"
    FTP_CLIENT = "ftp_client", "FTP client"
    TCP_SERVER = "tcp_server", "TCP server"
    TCP_CLIENT = "tcp_client", "TCP client"
    RADIUS = "radius", "RADIUS accounting server"


class ArchivePeriod(models.TextChoices):
    DAY = "day", "day"
    WEEK = "week", "week"
    MONTH = "month", "month"


class LogLevel(models.IntegerChoices):
    """R2.1: from Status (least detailed) to Setup (most detailed)."""

    STATUS = 0, "status"
    ERROR = 1, "error"
    WARNING = 2, "warning"
    INFO = 3, "info"
    DEBUG = 4, "debug"
    SETUP = 5, "setup"


class ObserverState(models.TextChoices):
    ONLINE = "online", _("online")
    OFFLINE = "offline", _("offline")


class ObserverProfile(models.Model):
    """R2.1: connects one device to the system through one data source."""

    name = models.CharField(max_length=64, unique=True, validators=[profile_name])
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="observers")
    source = models.CharField(max_length=20, choices=SourceType.choices)
    # Source-specific keys (path, port, host, user, password, secret, ...), see docs/config.md.
    settings = models.JSONField(default=dict, blank=True)
    archive_dir = models.CharField(
        max_length=500, blank=True, help_text="Raw archive folder; empty: the data directory's."
    )
    archive_period = models.CharField(
        max_length=5, choices=ArchivePeriod.choices, default=ArchivePeriod.MONTH
    )
    log_level = models.IntegerField(choices=LogLevel.choices, default=LogLevel.STATUS)
    remote = models.BooleanField(default=False, help_text="Runs on another host (R2.6).")
    # SHA-256 of the remote observer's token (issued once in the UI; never stored in clear).
    remote_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    # Service state (R2.5), written by the running collector.
    state = models.CharField(
        max_length=10, choices=ObserverState.choices, default=ObserverState.OFFLINE
    )
    last_record_at = models.DateTimeField(null=True, blank=True)
    records_total = models.PositiveBigIntegerField(default=0)
    # Calls this profile stored on `calls_day` (the server's day): the Observers page's
    # "calls today" (not the calls that started today, which a late file skews).
    calls_day = models.DateField(null=True, blank=True)
    calls_today = models.PositiveBigIntegerField(default=0)
    rejects_total = models.PositiveBigIntegerField(default=0)
    # R2.4: pieces whose processing failed for good (an error that a retry cannot fix, not
    # the database away); their bytes stay in the raw archive for `reprocess`.
    failures_total = models.PositiveBigIntegerField(default=0)
    last_failure = models.CharField(max_length=500, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def archive_path(self) -> Path:
        return Path(self.archive_dir) if self.archive_dir else settings.ARCHIVE_DIR / self.name

    @property
    def log_path(self) -> Path:
        return settings.LOG_DIR / "observer" / f"{self.name}.log"


class RejectedRecord(models.Model):
    """R2.7: a record that could not be parsed, kept with its raw text and the reason."""

    profile = models.ForeignKey(
        ObserverProfile, on_delete=models.CASCADE, related_name="rejects"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    source_name = models.CharField(max_length=300, blank=True, help_text="File or peer.")
    line_number = models.PositiveIntegerField(null=True, blank=True)
    raw = models.TextField()
    reason = models.CharField(max_length=500)
    # SHA-1 of the raw text: a re-delivered bad line is not listed twice (R2.4).
    fingerprint = models.CharField(max_length=40)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["profile", "received_at"], name="reject_profile_time")]
        constraints = [
            models.UniqueConstraint(fields=["profile", "fingerprint"], name="reject_unique_raw")
        ]

    def __str__(self):
        return f"{self.profile}: {self.reason}"

    @staticmethod
    def fingerprint_of(raw: str) -> str:
        return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324


class RemoteBatch(models.Model):
    """R2.6: a batch a remote observer delivered, remembered so that a batch sent again
    (its answer was lost) is acknowledged without being stored twice."""

    profile = models.ForeignKey(ObserverProfile, on_delete=models.CASCADE, related_name="batches")
    batch_id = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)
    size = models.PositiveIntegerField()
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "batch_id"], name="remote_batch_unique")
        ]

    def __str__(self):
        return f"{self.profile} batch {self.batch_id}"
