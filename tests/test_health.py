"""GET /health: database, broker, observers and the number of calls, for load balancers;
the details only for a logged-in user or a monitor with the health token."""
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from billing.models import Call
from observers.models import ObserverState
from tests.factories import DeviceFactory, ObserverProfileFactory


@pytest.fixture
def operator(client, db):
    """A logged-in user: the details are theirs to see."""
    client.force_login(User.objects.create_user("operator", password="pw-operator-1"))
    return client


def test_health_reports_database_broker_observers_and_calls(operator, settings):
    # given no broker (tasks run in-process), two observers and two calls
    settings.CELERY_BROKER_URL = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    kyiv = ObserverProfileFactory(name="Kyiv1", device=DeviceFactory(name="KyivPBX"),
                                  state=ObserverState.ONLINE, records_total=2,
                                  last_record_at=datetime(2024, 6, 17, 7, 0, tzinfo=UTC))
    ObserverProfileFactory(name="Lviv1", source="tcp_server", remote=True)
    for key in ("a", "b"):
        Call.objects.create(device=kyiv.device, source_key=key, duration=10, direction=0,
                            start=datetime(2024, 6, 17, 7, 0, tzinfo=UTC))
    # when /health is requested over plain HTTP by a logged-in user
    response = operator.get("/health")
    # then it answers 200 with each part's state
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["broker"] == {"status": "ok", "mode": "in-process"}
    assert body["calls"] == 2
    observers = {o["name"]: o for o in body["observers"]}
    assert observers["Kyiv1"] == {
        "name": "Kyiv1", "device": "KyivPBX", "source": "folder", "state": "online",
        "enabled": True, "remote": False, "last_record_at": "2024-06-17T07:00:00+00:00",
        "records_total": 2, "rejects_total": 0,
        "failures_total": 0, "last_failure": None, "last_failure_at": None,
    }
    assert (observers["Lviv1"]["state"], observers["Lviv1"]["remote"]) == ("offline", True)


def test_health_with_nothing_configured_is_still_ok(operator, settings):
    # given an empty database and no broker
    settings.CELERY_BROKER_URL = ""
    # when /health is requested
    body = operator.get("/health").json()
    # then it is ok with no observers and no calls
    assert (body["status"], body["observers"], body["calls"]) == ("ok", [], 0)


def test_health_answers_get_only(client, db):
    # given the health endpoint; when something is POSTed to it; then it is refused
    assert client.post("/health").status_code == 405


def test_health_reports_an_unreachable_broker_as_503(client, db, settings):
    # given tasks sent to a broker where nothing listens
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    # when /health is requested
    response = client.get("/health")
    # then it is an error the load balancer sees, with the database still ok
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["broker"]["status"], body["broker"]["mode"]) == (
        "error", "error", "celery")
    assert body["database"]["status"] == "ok"


def test_anyone_gets_the_liveness_answer_and_nothing_about_the_site(client, db, settings):
    # given no broker (tasks run in-process), and an observer profile with its counters
    settings.CELERY_BROKER_URL = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    ObserverProfileFactory(name="Kyiv1", records_total=7)
    # when /health is requested by someone not logged in, with no token or a wrong one
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer not-the-token"}):
        response = client.get("/health", **headers)
        # then it answers whether the system is up, and nothing more
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": {"status": "ok"},
                                   "broker": {"status": "ok", "mode": "in-process"}}
        assert "Kyiv1" not in response.content.decode()


def test_a_monitor_with_the_health_token_gets_the_details(client, db, settings):
    # given a health token, and an observer profile
    settings.HEALTH_TOKEN = "monitor-" + "0123456789abcdef" * 2
    ObserverProfileFactory(name="Kyiv1", records_total=7)
    # when /health is requested with it
    body = client.get("/health", HTTP_AUTHORIZATION=f"Bearer {settings.HEALTH_TOKEN}").json()
    # then the observers and their counters are in the answer
    assert [(o["name"], o["records_total"]) for o in body["observers"]] == [("Kyiv1", 7)]
    assert body["calls"] == 0
