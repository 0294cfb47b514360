import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port


class Mailbox:
    """What the SMTP server received: (sender, recipients, content) of each mail."""

    def __init__(self):
        self.messages = []
        self.sessions = []  # the connection (an id of it) each mail came over

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content.decode("utf-8", "replace")))
        self.sessions.append(id(session))
        return "250 OK"


@pytest.fixture
def mailbox(settings):
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that Django's mail goes to; scripts' mail
    without a recipient goes to security@example.com."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.TARISCOPE_ALERT_EMAIL = "security@example.com"
    yield box
    controller.stop()
