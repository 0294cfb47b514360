"""R2.1, R2.2: the New observer and Edit observer pages; the settings check they share with
apply_config; the supervisor restarting a collector whose settings were edited."""
import html
import json
import re

import pytest
from django.contrib.auth.models import Permission, User

from billing.models import Call
from observers.models import ObserverProfile, ObserverState
from tariscope.siteconfig.apply import site_config_apply
from tariscope.siteconfig.export import site_config_export
from tariscope.siteconfig.schema import SiteConfigError
from tests.conftest import wait_for
from tests.factories import DeviceFactory, ObserverProfileFactory
from tests.observers.helpers import supervising
from tests.observers.threecx_cdr import cdr_file, cdr_line

RADIUS_SETTINGS = {"secret": "radius-shared-s3cret", "port": 18130,
                   "clients": [{"address": "10.0.0.5", "secret": "client-five-s3cret"},
                               {"address": "10.0.0.6"}]}


def _staff(client, *codenames):
    user = User.objects.create_user("staff", password="pw-staff-1")
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, db):
    return _staff(client, "add_observerprofile", "change_observerprofile")


def form_data(device, **fields) -> dict:
    """What the browser posts; `settings` and `parser` are given as data, a None field is
    left out (an unticked checkbox)."""
    data = {"name": "PBX1", "device": device.pk, "source": "folder", "settings": {},
            "parser": None, "archive_dir": "", "archive_period": "month", "log_level": "0",
            "enabled": "on", "remote": None}
    data.update(fields)
    data["settings_text"] = data.pop("settings")
    if not isinstance(data["settings_text"], str):
        data["settings_text"] = json.dumps(data["settings_text"])
    parser = data.pop("parser")
    data["parser_options"] = parser if isinstance(parser, str) else (
        "" if parser is None else json.dumps(parser))
    return {key: value for key, value in data.items() if value is not None}


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def textarea(response, name: str) -> str:
    """The text a textarea of the page holds, as the browser would send it back."""
    match = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>',
                      response.content.decode(), re.S)
    assert match, f"no textarea {name}"
    return html.unescape(match.group(1)).strip()


def row(profile) -> dict:
    values = ObserverProfile.objects.filter(pk=profile.pk).values().get()
    values.pop("state")  # written by a collector, not by the form
    return values


def test_new_folder_profile_is_created_from_the_form(staff_client, tmp_path):
    # given a device
    device = DeviceFactory(name="Office", type="3cx")
    # when a folder profile is posted with a parser option and a weekly archive
    response = staff_client.post("/observers/new", form_data(
        device, name="Office1", settings={"path": str(tmp_path), "settle_seconds": 1},
        parser={"fields": "v20"}, archive_period="week", log_level="3"))
    # then it is stored with exactly those settings and the list shows it
    assert response.status_code == 302 and response.url == "/observers/"
    profile = ObserverProfile.objects.get(name="Office1")
    assert (profile.device, profile.source, profile.archive_period, profile.log_level,
            profile.enabled, profile.remote) == (device, "folder", "week", 3, True, False)
    assert profile.settings == {"path": str(tmp_path), "settle_seconds": 1,
                                "parser": {"fields": "v20"}}
    assert "Office1" in staff_client.get("/observers/").content.decode()


def test_new_radius_profile_with_clients_is_created(staff_client):
    # given a RADIUS gateway
    device = DeviceFactory(name="Sbc", type="radius")
    # when a RADIUS profile with its secret and clients is posted, disabled
    response = staff_client.post("/observers/new", form_data(
        device, name="Sbc1", source="radius", settings=RADIUS_SETTINGS, enabled=None))
    # then it is stored as given
    assert response.status_code == 302
    profile = ObserverProfile.objects.get(name="Sbc1")
    assert (profile.source, profile.settings, profile.enabled) == (
        "radius", RADIUS_SETTINGS, False)


def test_edit_changes_the_profile(staff_client, tmp_path):
    # given a folder profile
    profile = ObserverProfileFactory(name="Edit1", settings={"path": str(tmp_path / "a")})
    other = DeviceFactory(name="Other")
    # when its page is posted with another folder, device, name and archive folder
    response = staff_client.post("/observers/Edit1/edit", form_data(
        other, name="Edit2", settings={"path": str(tmp_path / "b")},
        archive_dir=str(tmp_path / "archive"), archive_period="day"))
    # then the row holds the new values
    assert response.status_code == 302
    profile.refresh_from_db()
    assert (profile.name, profile.device, profile.settings, profile.archive_dir,
            profile.archive_period) == ("Edit2", other, {"path": str(tmp_path / "b")},
                                        str(tmp_path / "archive"), "day")


def test_edit_page_shows_the_stored_settings_and_a_tcp_profile_becomes_radius(staff_client):
    # given a TCP server profile
    ObserverProfileFactory(name="Tcp1", source="tcp_server",
                           settings={"port": 5100, "max_connections": 4})
    # when its page is opened
    page = staff_client.get("/observers/Tcp1/edit")
    # then the settings are there, pretty-printed, for editing
    assert json.loads(textarea(page, "settings_text")) == {"port": 5100, "max_connections": 4}
    # and when it is switched to a RADIUS source with the RADIUS keys
    profile = ObserverProfile.objects.get(name="Tcp1")
    staff_client.post("/observers/Tcp1/edit", form_data(
        profile.device, name="Tcp1", source="radius", settings={"secret": "abc"}))
    # then the TCP keys are gone
    profile.refresh_from_db()
    assert (profile.source, profile.settings) == ("radius", {"secret": "abc"})


@pytest.mark.parametrize(("source", "keys", "parser", "field", "message"), [
    ("folder", {"path": "in", "pth": "x"}, None, "settings_text",
     "pth: unknown key (did you mean 'path'?)"),
    ("folder", {"path": 5}, None, "settings_text", "path: expected text, got 5"),
    ("tcp_server", {"port": 70000}, None, "settings_text",
     "port: 70000 is greater than the maximum of 65535"),
    ("radius", {"secret": "x", "clients": [{"address": "10.0.0.5", "secret": 7}]}, None,
     "settings_text", "clients[0].secret: expected text, got 7"),
    ("ftp_client", {"host": "pbx", "user": "cdr"}, None, "settings_text",
     "password: is required for source 'ftp_client'"),
    ("folder", {"path": "in", "host": "pbx"}, None, "settings_text",
     "host: not a key of source 'folder' (it takes path, settle_seconds, parser)"),
    ("folder", {"path": "in"}, {"colour": "red"}, "parser_options",
     "parser: unknown option 'colour': the 3CX parser reads only 'fields'"),
    ("folder", {"path": "in"}, {"fields": "v19"}, "parser_options",
     "parser: fields: 'v19' is not a field set"),
    ("folder", {"path": "in"}, "[1, 2]", "parser_options", "parser: expected a mapping"),
    ("folder", '{"path": "in",}', None, "settings_text", "not valid JSON: "),
    ("folder", '["in"]', None, "settings_text", "must be a JSON object"),
])
def test_bad_settings_are_shown_with_their_path_and_change_nothing(
        staff_client, tmp_path, source, keys, parser, field, message):
    # given a folder profile on a 3CX
    profile = ObserverProfileFactory(name="Keep1", settings={"path": str(tmp_path)})
    before = row(profile)
    # when bad settings are posted
    response = staff_client.post("/observers/Keep1/edit", form_data(
        profile.device, name="Keep1", source=source, settings=keys, parser=parser,
        archive_period="day"))
    # then the page comes back with the message next to its field, and nothing changed
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert any(error.startswith(message) for error in errors[field]), errors
    assert message in page_text(response)
    assert "Nothing was saved" in page_text(response)
    assert row(profile) == before


def test_a_new_profile_with_bad_settings_is_not_created(staff_client):
    # given a device
    device = DeviceFactory(name="Sbc", type="radius")
    # when a RADIUS profile without its secret is posted
    response = staff_client.post("/observers/new", form_data(
        device, name="Sbc1", source="radius", settings={"port": 0}))
    # then both problems are shown and no profile exists
    text = page_text(response)
    assert "secret: is required for source 'radius'" in text
    assert "port: 0 is less than the minimum of 1" in text
    assert not ObserverProfile.objects.filter(name="Sbc1").exists()


def test_secrets_are_not_shown_and_are_kept_when_unchanged(staff_client):
    # given a RADIUS profile with its secret and a client's, and an FTP server profile
    radius = ObserverProfileFactory(name="Rad1", source="radius",
                                    settings=RADIUS_SETTINGS, device__type="radius")
    ftp = ObserverProfileFactory(name="Ftp1", source="ftp_server",
                                 settings={"user": "cucm", "password": "ftp-pass-s3cret"})
    # when their pages are opened
    radius_page = staff_client.get("/observers/Rad1/edit")
    ftp_page = staff_client.get("/observers/Ftp1/edit")
    # then no secret is in them; placeholders stand in their place
    for page in (radius_page, ftp_page):
        assert "s3cret" not in page.content.decode()
    shown = json.loads(textarea(radius_page, "settings_text"))
    assert shown == {"secret": "(unchanged)", "port": 18130,
                     "clients": [{"address": "10.0.0.5", "secret": "(unchanged)"},
                                 {"address": "10.0.0.6"}]}
    assert json.loads(textarea(ftp_page, "settings_text"))["password"] == "(unchanged)"
    # and when the pages are sent back with another port and user but the secrets untouched
    shown["port"] = 18131
    staff_client.post("/observers/Rad1/edit", form_data(
        radius.device, name="Rad1", source="radius", settings=shown))
    ftp_shown = json.loads(textarea(ftp_page, "settings_text"))
    staff_client.post("/observers/Ftp1/edit", form_data(
        ftp.device, name="Ftp1", source="ftp_server", settings={**ftp_shown, "user": "cdr"}))
    # then the changes are stored and the secrets are the stored ones
    radius.refresh_from_db()
    ftp.refresh_from_db()
    assert radius.settings == {**RADIUS_SETTINGS, "port": 18131}
    assert ftp.settings == {"user": "cdr", "password": "ftp-pass-s3cret"}


def test_a_secret_can_be_replaced_and_a_placeholder_needs_a_stored_value(staff_client):
    # given a RADIUS profile
    radius = ObserverProfileFactory(name="Rad2", source="radius", settings=RADIUS_SETTINGS,
                                    device__type="radius")
    before = row(radius)
    # when a client is added with a placeholder for a secret that was never stored
    added = {**RADIUS_SETTINGS, "secret": "(unchanged)",
             "clients": [*RADIUS_SETTINGS["clients"],
                         {"address": "10.0.0.7", "secret": "(unchanged)"}]}
    refused = staff_client.post("/observers/Rad2/edit", form_data(
        radius.device, name="Rad2", source="radius", settings=added))
    # then that is an error at its path and nothing changed
    assert "clients[2].secret: no stored value to keep" in page_text(refused)
    assert row(radius) == before
    # and when the profile's secret is replaced, the clients' left unchanged
    changed = {**RADIUS_SETTINGS, "secret": "new-shared-secret",
               "clients": [{"address": "10.0.0.5", "secret": "(unchanged)"}]}
    staff_client.post("/observers/Rad2/edit", form_data(
        radius.device, name="Rad2", source="radius", settings=changed))
    # then the new secret and the stored client secret are kept
    radius.refresh_from_db()
    assert radius.settings["secret"] == "new-shared-secret"
    assert radius.settings["clients"] == [{"address": "10.0.0.5",
                                           "secret": "client-five-s3cret"}]


def test_users_without_the_right_are_refused_and_anonymous_users_log_in(client, db, tmp_path):
    # given a profile, a user who may only change profiles, and one with no right
    profile = ObserverProfileFactory(name="Safe1", settings={"path": str(tmp_path)})
    before = row(profile)
    User.objects.create_user("viewer", password="pw-viewer-1")
    # when an anonymous user opens the pages
    anonymous = [client.get("/observers/new"), client.get("/observers/Safe1/edit")]
    # then they are sent to log in
    assert all(r.status_code == 302 and "/login" in r.url for r in anonymous)
    # and when the viewer opens or posts them
    client.login(username="viewer", password="pw-viewer-1")
    viewer = [client.get("/observers/new"), client.get("/observers/Safe1/edit"),
              client.post("/observers/Safe1/edit", form_data(
                  profile.device, name="Safe1", settings={"path": "elsewhere"})),
              client.post("/observers/new", form_data(profile.device, name="New1"))]
    # then each is refused and nothing changed
    assert [r.status_code for r in viewer] == [403, 403, 403, 403]
    assert row(profile) == before and not ObserverProfile.objects.filter(name="New1").exists()
    # and a user who may change but not add profiles gets the edit page only
    client.logout()
    _staff(client, "change_observerprofile")
    assert (client.get("/observers/new").status_code,
            client.get("/observers/Safe1/edit").status_code) == (403, 200)


def test_list_links_new_and_edit_for_staff_only(staff_client, client, db):
    # given a profile
    ObserverProfileFactory(name="Link1")
    # when staff open the list
    staff_html = staff_client.get("/observers/").content.decode()
    # then it links the new and edit pages
    assert 'href="/observers/new"' in staff_html and 'href="/observers/Link1/edit"' in staff_html
    # and a user without the rights sees neither link
    client.force_login(User.objects.create_user("viewer", password="pw-viewer-1"))
    viewer_html = client.get("/observers/").content.decode()
    assert "/observers/new" not in viewer_html and "/observers/Link1/edit" not in viewer_html


def test_export_after_an_edit_gives_back_the_edit(staff_client):
    # given a RADIUS profile edited in the UI
    radius = ObserverProfileFactory(name="Rad3", source="radius", settings=RADIUS_SETTINGS,
                                    device__type="radius", device__name="Sbc")
    shown = json.loads(textarea(staff_client.get("/observers/Rad3/edit"), "settings_text"))
    shown.update(port=1814, retransmit_cache_seconds=10)
    staff_client.post("/observers/Rad3/edit", form_data(
        radius.device, name="Rad3", source="radius", settings=shown, archive_period="week",
        log_level="4", enabled=None))
    # when the configuration is exported
    exported = site_config_export()
    # then the observer entry says what the edit said, with the secrets kept
    (node,) = exported["nodes"]
    (device,) = node["devices"]
    assert device["observer"] == {
        "name": "Rad3", "source": "radius", "secret": "radius-shared-s3cret", "port": 1814,
        "clients": RADIUS_SETTINGS["clients"], "retransmit_cache_seconds": 10,
        "archive_period": "week", "log_level": "debug", "enabled": False}
    # and applying the export changes nothing
    counts = site_config_apply(data=exported)
    assert counts["observers"] == {"created": 0, "updated": 0, "unchanged": 1}


@pytest.mark.django_db
def test_apply_config_checks_parser_options_with_the_same_check(tmp_path):
    # given a file whose 3CX observer has a parser option the 3CX parser does not know
    data = {"nodes": [{"name": "Kyiv", "devices": [{
        "name": "PBX1", "type": "3cx",
        "observer": {"name": "PBX1", "source": "folder", "path": str(tmp_path),
                     "parser": {"colour": "red"}}}]}]}
    # when it is applied
    with pytest.raises(SiteConfigError) as refused:
        site_config_apply(data=data)
    # then the problem is reported at its path, as the form reports it, and nothing is written
    assert refused.value.errors == [
        "nodes[0].devices[0].observer.parser: unknown option 'colour': the 3CX parser reads "
        "only 'fields'"]
    assert not ObserverProfile.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_supervisor_restarts_a_collector_whose_settings_were_edited(client, tmp_path,
                                                                  pipeline_worker):
    # given a running folder profile reading folder a
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    profile = ObserverProfileFactory(name="Sup2", settings={"path": str(first),
                                                            "settle_seconds": 0})
    _staff(client, "change_observerprofile")
    with supervising() as supervisor:
        wait_for(lambda: ObserverProfile.objects.get(pk=profile.pk).state == ObserverState.ONLINE)
        started = supervisor.running["Sup2"].thread
        # when the UI moves it to folder b and a CDR file arrives there
        response = client.post("/observers/Sup2/edit", form_data(
            profile.device, name="Sup2", settings={"path": str(second), "settle_seconds": 0}))
        assert response.status_code == 302
        written = tmp_path / "cdr.log"
        written.write_bytes(cdr_file(cdr_line()))
        written.rename(second / "cdr.log")  # whole at once: it settles at once (0 s)
        # then a new collector reads folder b: the file is processed and its call stored
        # (by the Celery worker when a broker is configured)
        wait_for(lambda: (second / "done" / "cdr.log").exists())
        wait_for(lambda: Call.objects.filter(device=profile.device).count() == 1)
        assert supervisor.running["Sup2"].thread is not started
        assert not started.is_alive()
