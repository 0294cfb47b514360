"""R9.2: one small event API; subscribers never break the caller."""
from scripts.events import Event, event_emit, event_subscribe


def test_subscribers_receive_events_with_their_parameters():
    # given a subscriber
    seen = []
    unsubscribe = event_subscribe(lambda event, params: seen.append((event, params)))
    try:
        # when a collector raises "connected"
        event_emit(Event.SOURCE_CONNECTED, profile="PBX1", peer="10.0.0.5:5000")
    finally:
        unsubscribe()
    # then the subscriber got it, and after unsubscribing nothing more
    event_emit(Event.SOURCE_DISCONNECTED, profile="PBX1")
    assert seen == [(Event.SOURCE_CONNECTED, {"profile": "PBX1", "peer": "10.0.0.5:5000"})]


def test_a_failing_subscriber_is_logged_and_the_others_still_run(caplog):
    # given a broken subscriber before a working one
    seen = []

    def broken(event, params):
        raise RuntimeError("script bug")

    undo_broken = event_subscribe(broken)
    undo_ok = event_subscribe(lambda event, params: seen.append(event))
    try:
        # when an event is raised
        event_emit(Event.DATABASE_ERROR, profile="PBX1", error="connection refused")
    finally:
        undo_broken()
        undo_ok()
    # then the caller went on, the working subscriber ran, and the failure is in the log
    assert seen == [Event.DATABASE_ERROR]
    assert "script bug" in caplog.text
