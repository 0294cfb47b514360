"""R9.3: the mail settings in force, the page's (scripts.MailSettings) over the
environment's, and the connection to the mail server that they describe. Read at most every
few seconds per process, so a change on the page reaches the dispatcher within that time."""
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend
from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_save

from scripts.models import MailSettings

REREAD_SECONDS = 5.0
_cache: tuple[float, "MailConfig"] | None = None


@dataclass(frozen=True)
class MailConfig:
    """What mail is sent with: the server (None: the environment's EMAIL_URL, which may be
    the console in development), the sender and the default recipients."""

    host: str | None
    port: int | None
    security: str
    username: str
    password: str
    sender: str
    alert_email: str

    @property
    def recipients(self) -> list[str]:
        return [address.strip() for address in self.alert_email.split(",") if address.strip()]

    def describe(self) -> str:
        if not self.host:
            return f"the environment's mail server ({settings.EMAIL_BACKEND.rsplit('.', 1)[-1]}" \
                   + (f", {settings.EMAIL_HOST}:{settings.EMAIL_PORT})"
                      if "smtp" in settings.EMAIL_BACKEND else ")")
        return f"{self.host}:{self.port or _default_port(self.security)} ({self.security})"


def _default_port(security: str) -> int:
    return {"ssl": 465, "starttls": 587}.get(security, 25)


def mail_config(*, fresh: bool = False) -> MailConfig:
    """The page's settings over the environment's (cached for REREAD_SECONDS)."""
    global _cache
    now = time.monotonic()
    if not fresh and _cache is not None and now - _cache[0] < REREAD_SECONDS:
        return _cache[1]
    row = MailSettings.objects.filter(pk=1).first() or MailSettings()
    config = MailConfig(
        host=row.host.strip() or None, port=row.port, security=row.security or "none",
        username=row.username, password=row.password,
        sender=row.sender.strip() or settings.DEFAULT_FROM_EMAIL,
        alert_email=row.alert_email.strip() or settings.TARISCOPE_ALERT_EMAIL or "")
    _cache = (now, config)
    return config


def mail_config_forget() -> None:
    """Read the settings again at the next mail (after the page saved them)."""
    global _cache
    _cache = None


def mail_connection(config: MailConfig | None = None, *, timeout: float = 30.0):
    """A connection to the mail server in force (not opened yet)."""
    config = config or mail_config()
    if not config.host:
        return get_connection()
    return EmailBackend(host=config.host, port=config.port or _default_port(config.security),
                        username=config.username or None, password=config.password or None,
                        use_tls=config.security == "starttls",
                        use_ssl=config.security == "ssl", timeout=timeout)


def _forget_on_change(sender=None, setting=None, **kwargs) -> None:
    if sender is MailSettings or setting in (None, "DEFAULT_FROM_EMAIL", "TARISCOPE_ALERT_EMAIL") \
            or (setting or "").startswith("EMAIL_"):
        mail_config_forget()


def mail_signals_connect() -> None:
    """Forget the cached settings when the page saves them, or a test changes Django's."""
    post_save.connect(_forget_on_change, sender=MailSettings, dispatch_uid="mail.saved")
    post_delete.connect(_forget_on_change, sender=MailSettings, dispatch_uid="mail.deleted")
    setting_changed.connect(_forget_on_change, dispatch_uid="mail.setting")
