"""The shipped notify_disconnect.py: a mail when a data source stays away longer than
DISCONNECTED_MINUTES, and when it is back; a short drop mails nothing. Run by the real
dispatcher, with a real SMTP server on loopback."""
import re

import pytest

from scripts.dispatch import Dispatcher
from scripts.events import Event, event_emit
from scripts.files import SHIPPED
from scripts.models import Alert, ScriptBinding
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def notifier(site, settings):
    """notify_disconnect.py in the scripts folder, with DISCONNECTED_MINUTES edited to 0 (as
    a user edits the constants) and bound to the three events of the site's profile."""
    def install(minutes: int):
        settings.SCRIPTS_DIR.mkdir(parents=True, exist_ok=True)
        text = (SHIPPED / "notify_disconnect.py").read_text()
        text, edited = re.subn(r"(?m)^DISCONNECTED_MINUTES = \d+$",
                               f"DISCONNECTED_MINUTES = {minutes}", text)
        assert edited == 1
        (settings.SCRIPTS_DIR / "notify_disconnect.py").write_text(text)
        for event in ("source_disconnected", "source_connected"):
            ScriptBinding.objects.create(profile=site.profile, event=event,
                                         script="notify_disconnect.py")
        ScriptBinding.objects.create(profile=site.profile, event="periodic", interval=1,
                                     script="notify_disconnect.py")
    return install


@pytest.fixture
def dispatcher():
    running = Dispatcher()
    yield running
    running.close()


def _periodic_due():
    ScriptBinding.objects.filter(event="periodic").update(last_run_at=None)


@pytest.mark.embedded
def test_a_source_that_stays_away_mails_once_and_again_when_it_is_back(
        site, notifier, dispatcher, mailbox):
    # given the notifier with no grace time
    notifier(0)
    # when the PBX disconnects and the periodic checks run twice
    event_emit(Event.SOURCE_DISCONNECTED, profile=site.profile.name, peer="10.0.0.5:5000")
    dispatcher.run_once()
    _periodic_due()
    dispatcher.run_once()
    # then one mail says so, with an alert
    wait_for(lambda: len(mailbox.messages) == 1, timeout=10)
    assert f"Data source disconnected: {site.profile.name}" in mailbox.messages[0][2]
    assert mailbox.messages[0][1] == ["security@example.com"]
    assert Alert.objects.get().level == "warning"
    # and when it connects again, a second mail says it is back
    event_emit(Event.SOURCE_CONNECTED, profile=site.profile.name, peer="10.0.0.5:5001")
    dispatcher.run_once()
    wait_for(lambda: len(mailbox.messages) == 2, timeout=10)
    assert "connected again" in mailbox.messages[1][2]
    assert "10.0.0.5:5001" in mailbox.messages[1][2]


@pytest.mark.embedded
def test_a_short_drop_mails_nothing(site, notifier, dispatcher, mailbox):
    # given the shipped grace time of 5 minutes
    notifier(5)
    # when the PBX drops and is back before the periodic check finds it away long enough
    event_emit(Event.SOURCE_DISCONNECTED, profile=site.profile.name, peer="10.0.0.5:5000")
    dispatcher.run_once()
    event_emit(Event.SOURCE_CONNECTED, profile=site.profile.name, peer="10.0.0.5:5001")
    _periodic_due()
    dispatcher.run_once()
    # then no mail and no alert
    dispatcher.mail_send()
    assert mailbox.messages == []
    assert not Alert.objects.exists()


@pytest.mark.embedded
def test_a_profile_is_away_only_when_its_last_peer_has_gone(site, notifier, dispatcher,
                                                            mailbox):
    # given two PBXs connected to one TCP server profile
    notifier(0)
    for peer in ("10.0.0.5:5000", "10.0.0.6:5000"):
        event_emit(Event.SOURCE_CONNECTED, profile=site.profile.name, peer=peer)
    # when one of them goes
    event_emit(Event.SOURCE_DISCONNECTED, profile=site.profile.name, peer="10.0.0.5:5000")
    dispatcher.run_once()
    _periodic_due()
    dispatcher.run_once()
    dispatcher.mail_send()
    # then nothing is reported; when the second goes too, it is
    assert mailbox.messages == []
    event_emit(Event.SOURCE_DISCONNECTED, profile=site.profile.name, peer="10.0.0.6:5000")
    dispatcher.run_once()
    _periodic_due()
    dispatcher.run_once()
    wait_for(lambda: len(mailbox.messages) == 1, timeout=10)
