"""R2.5, R2.7: the observers page, start/stop, the log and the rejects list; the supervisor."""
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from observers.models import ObserverProfile, ObserverState, RejectedRecord
from observers.pipeline import profile_ingest
from tests.conftest import wait_for
from tests.factories import ObserverProfileFactory
from tests.observers.helpers import supervising
from tests.observers.threecx_cdr import cdr_file, cdr_line


@pytest.fixture
def operator_client(client, db):
    user = User.objects.create_user("operator", password="pw-operator-1")
    user.user_permissions.add(Permission.objects.get(codename="change_observerprofile"))
    client.force_login(user)
    return client


def test_list_shows_each_profile_with_state_counters_and_rejects(operator_client, db):
    # given a profile that stored one call and rejected one line
    profile = ObserverProfileFactory(name="PBX7")
    profile_ingest(profile=profile, data=cdr_file(cdr_line(), "Call 2,too,short"))
    # when the page is opened
    html = operator_client.get("/observers/").content.decode()
    # then the profile is listed offline with one record today-or-not, one reject, a log link
    assert "PBX7" in html and "offline" in html
    assert '<td class="num">1</td>' in html
    assert "/observers/PBX7/rejects" in html and "/observers/PBX7/log" in html


def test_calls_stored_today_count_a_late_file_and_start_again_the_next_day(operator_client, db):
    # given a profile that stores today three calls made in June 2024 (a late file)
    profile = ObserverProfileFactory(name="PBX7")
    profile_ingest(profile=profile, data=cdr_file(*(cdr_line(historyid=f"Call {n}")
                                                    for n in range(3))))
    profile_ingest(profile=profile, data=cdr_file(cdr_line(historyid="Call 9")),
                   source_name="second.log")
    # when the page is opened today, and the next day
    today = operator_client.get("/observers/").content.decode()
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        tomorrow = operator_client.get("/observers/").content.decode()
    # then "calls stored today" (the first number of its row) is 4 whenever they were made,
    # and 0 the next day, while the records stay 4
    assert numbers_of_row(today, "PBX7")[:2] == ["4", "4"]
    assert numbers_of_row(tomorrow, "PBX7")[:2] == ["0", "4"]


def numbers_of_row(html: str, name: str) -> list[str]:
    """The numeric cells of the profile's row, in order."""
    row = html[html.index(f">{name}<"):]
    return re.findall(r'<td class="num">([^<]*)</td>', row[:row.index("</tr>")])


def test_page_query_count_does_not_grow_with_profiles(operator_client, db,
                                                      django_assert_max_num_queries):
    # given many profiles
    ObserverProfileFactory.create_batch(12)
    # when the page is opened; then a fixed number of queries serve it
    with django_assert_max_num_queries(8):
        assert operator_client.get("/observers/").status_code == 200


def test_stop_and_start_set_the_enabled_flag(operator_client, db):
    # given a running local profile
    profile = ObserverProfileFactory(name="PBX8", enabled=True)
    # when it is stopped, then started, from the page
    operator_client.post("/observers/PBX8/stop/")
    stopped = ObserverProfile.objects.get(pk=profile.pk).enabled
    operator_client.post("/observers/PBX8/start/")
    started = ObserverProfile.objects.get(pk=profile.pk).enabled
    # then the flag the supervisor follows changed each time
    assert (stopped, started) == (False, True)


def test_remote_profiles_and_users_without_the_right_cannot_be_toggled(client, operator_client,
                                                                      db):
    # given a remote profile, and a user without the change right
    remote = ObserverProfileFactory(name="Far", remote=True, enabled=True)
    ObserverProfileFactory(name="Near", enabled=True)
    plain = User.objects.create_user("viewer", password="pw-viewer-1")
    # when the operator stops the remote one, and the viewer stops the local one
    operator_client.post("/observers/Far/stop/")
    client.force_login(plain)
    response = client.post("/observers/Near/stop/")
    # then neither changed: remote ones run elsewhere; the viewer is refused
    assert ObserverProfile.objects.get(pk=remote.pk).enabled is True
    assert response.status_code == 403
    assert ObserverProfile.objects.get(name="Near").enabled is True


def test_log_and_rejects_pages_show_what_happened(operator_client, db):
    # given a profile that rejected a line
    profile = ObserverProfileFactory(name="PBX9", log_level=3)
    profile_ingest(profile=profile, data=cdr_file("Call 5,broken"), source_name="cdr-1.log")
    # when its log and its rejects are opened, and the rejects searched
    log = operator_client.get("/observers/PBX9/log").content.decode()
    rejects = operator_client.get("/observers/PBX9/rejects").content.decode()
    missing = operator_client.get("/observers/PBX9/rejects?q=nothing-like-it").content.decode()
    # then the log has the file's summary, the rejects page the raw line and the reason
    assert "cdr-1.log" in log
    reject = RejectedRecord.objects.get(profile=profile)
    assert "Call 5,broken" in rejects and reject.reason in rejects
    assert "Nothing rejected." in missing


@pytest.mark.django_db(transaction=True)
def test_supervisor_follows_the_enabled_flag(tmp_path):
    # given an enabled folder profile
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    profile = ObserverProfileFactory(name="Sup1", settings={"path": str(inbox)})
    with supervising() as supervisor:
        # when the supervisor runs, then the collector goes online
        wait_for(lambda: ObserverProfile.objects.get(pk=profile.pk).state == ObserverState.ONLINE)
        # and when the profile is disabled, it goes offline
        ObserverProfile.objects.filter(pk=profile.pk).update(enabled=False)
        wait_for(lambda: ObserverProfile.objects.get(pk=profile.pk).state == ObserverState.OFFLINE)
        wait_for(lambda: "Sup1" not in supervisor.running)
