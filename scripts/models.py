"""R9: scripts bound to the events of observer profiles, the events waiting for them, and
what they did (the event log, alerts, the mail they send)."""
from django.db import models

from observers.models import ObserverProfile
from scripts.events import Event


class ScriptBinding(models.Model):
    """R9.1: run `script` (a file name in TARISCOPE_SCRIPTS_DIR) at `event` of `profile`."""

    profile = models.ForeignKey(ObserverProfile, on_delete=models.CASCADE,
                                related_name="script_bindings")
    event = models.CharField(max_length=40, choices=[(e.value, e.value) for e in Event])
    script = models.CharField(max_length=200, help_text="A file in TARISCOPE_SCRIPTS_DIR.")
    enabled = models.BooleanField(default=True)
    timeout = models.FloatField(default=10.0, help_text="Seconds main() may take.")
    interval = models.PositiveIntegerField(
        default=0, help_text="periodic: seconds between runs (0: the event is not periodic).")
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["profile__name", "event", "script"]
        constraints = [models.UniqueConstraint(fields=["profile", "event", "script"],
                                               name="binding_unique")]

    def __str__(self):
        return f"{self.profile.name}: {self.event} -> {self.script}"


class QueuedEvent(models.Model):
    """R9.2: an event waiting for its scripts, written in the transaction of the change that
    raised it. A `call_processed` row stands for the calls one piece stored (`params["ids"]`:
    one row per piece, not per call); `done` counts the calls already scripted, so that a
    dispatcher that stopped goes on from the next one."""

    profile = models.ForeignKey(ObserverProfile, on_delete=models.CASCADE,
                                related_name="queued_events")
    event = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    done = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return f"{self.event} of {self.profile_id} ({self.done} done)"


class EventLogEntry(models.Model):
    """R9.2: what one script did for one event (or one call of call_processed)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    event = models.CharField(max_length=40)
    profile = models.CharField(max_length=100, blank=True)
    script = models.CharField(max_length=200, blank=True)
    call_id = models.BigIntegerField(null=True, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    log = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["call_id"], name="eventlog_call")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.event} {self.script}: {self.summary}"


class Alert(models.Model):
    """R9.5: a suspicious call or behaviour a script reported with host.alert()."""

    class Level(models.TextChoices):
        WARNING = "warning"
        CRITICAL = "critical"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    script = models.CharField(max_length=200)
    profile = models.CharField(max_length=100, blank=True)
    level = models.CharField(max_length=10, choices=Level.choices)
    reason = models.CharField(max_length=1000)
    call_id = models.BigIntegerField(null=True, blank=True)
    subscriber_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self):
        return f"{self.level}: {self.reason}"


class OutgoingMail(models.Model):
    """R9.3: a mail a script sent, kept until the mail server took it (so that a script is
    never run twice to send it again, and an SMTP server that is away loses nothing)."""

    to = models.JSONField(default=list)
    subject = models.CharField(max_length=500)
    body = models.TextField()
    script = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return f"to {', '.join(self.to)}: {self.subject}"


class MailSettings(models.Model):
    """R9.3, R11.1: the mail server, sender and default recipient set on the Mail settings
    page (one row). An empty field keeps the environment's value (EMAIL_URL,
    DEFAULT_FROM_EMAIL, TARISCOPE_ALERT_EMAIL): scripts/mail.py joins the two."""

    class Security(models.TextChoices):
        ENVIRONMENT = "", "as the environment (EMAIL_URL)"
        NONE = "none", "none (port 25)"
        STARTTLS = "starttls", "STARTTLS (port 587)"
        SSL = "ssl", "TLS from the start (port 465)"

    host = models.CharField(max_length=255, blank=True,
                            help_text="The SMTP server; empty: the environment's EMAIL_URL.")
    port = models.PositiveIntegerField(null=True, blank=True)
    security = models.CharField(max_length=10, choices=Security.choices, blank=True)
    username = models.CharField(max_length=255, blank=True)
    password = models.CharField(max_length=255, blank=True)
    sender = models.CharField(max_length=255, blank=True,
                              help_text="From: of every mail; empty: DEFAULT_FROM_EMAIL.")
    alert_email = models.CharField(
        max_length=1000, blank=True,
        help_text="Where a script's mail to no one in particular goes (several: "
                  "comma-separated); empty: TARISCOPE_ALERT_EMAIL.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "mail settings"

    def __str__(self):
        return f"mail via {self.host or 'the environment'}"
