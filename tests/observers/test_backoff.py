"""R2.2: the one back-off of the collectors (observers/backoff.py), with the bounds each
caller gives it."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from observers.backoff import backoff


@pytest.mark.parametrize(("caller", "low", "high", "delays"), [
    # the supervisor restarting a collector that died: 5 s, 10 s, 20 s ... 5 minutes
    ("supervisor", 5.0, 300.0, [5, 10, 20, 40, 80, 160, 300, 300]),
    # the FTP server serving again, the RADIUS source binding again, a remote observer
    # sending to the main server again: 1 s, doubling, up to a minute
    ("ftp server, radius, remote", 1.0, 60.0, [1, 2, 4, 8, 16, 32, 60, 60]),
    # the FTP client polling again after a failed poll: from `interval` up to
    # max(interval, min(300, 10 * interval))
    ("ftp client, interval 60", 60.0, 300.0, [60, 120, 240, 300, 300]),
    ("ftp client, interval 10", 10.0, 100.0, [10, 20, 40, 80, 100, 100]),
    ("ftp client, interval 600", 600.0, 600.0, [600, 600]),
])
def test_delay_doubles_from_the_first_up_to_the_cap(caller, low, high, delays):
    # given a caller's bounds
    # when the delays of its retries in a row are computed
    got = [backoff(attempt, low, high) for attempt in range(len(delays))]
    # then each doubles the one before, from `low`, and stays at `high` once there
    assert got == delays


@pytest.mark.parametrize(("low", "high"), [(0.5, 30.0), (1.0, 60.0), (0.1, 2.0)])
@pytest.mark.parametrize("attempt", range(12))
def test_jittered_delay_is_drawn_from_the_upper_half_of_its_ceiling(low, high, attempt):
    # given the bounds of a TCP source (retry_min/retry_max, reconnect_min/reconnect_max)
    ceiling = min(high, low * 2 ** attempt)
    # when the delay of a retry is drawn many times
    drawn = [backoff(attempt, low, high, jitter=True) for _ in range(200)]
    # then every draw lies between half the ceiling (never under `low`) and the ceiling
    assert all(max(low, ceiling / 2) <= delay <= ceiling for delay in drawn)
    # and they differ, so that sources failing together do not retry in step
    assert len(set(drawn)) > 1 or ceiling == low


@pytest.mark.parametrize("jitter", [False, True])
def test_first_delay_is_the_minimum_with_or_without_jitter(jitter):
    # given a first failure, when its delay is computed, then it is the minimum
    assert backoff(0, 0.5, 30.0, jitter=jitter) == 0.5


def test_a_failure_counted_for_days_still_waits_the_cap():
    # given a server down for so long that the failures counted are huge
    # when the next delay is computed, then it is the cap (no overflow)
    assert backoff(10**6, 1.0, 60.0) == 60.0
    assert backoff(10**6, 1.0, 60.0, jitter=True) <= 60.0


@given(attempt=st.integers(min_value=0, max_value=10_000),
       low=st.floats(min_value=0.001, max_value=1000.0),
       factor=st.floats(min_value=1.0, max_value=1000.0),
       jitter=st.booleans())
def test_delay_always_lies_within_its_bounds_and_never_shrinks(attempt, low, factor, jitter):
    # given any bounds low <= high and any retry number
    high = low * factor
    # when its delay is computed
    delay = backoff(attempt, low, high, jitter=jitter)
    # then it is within the bounds, and (without jitter) never shorter than the one before
    assert low <= delay <= high
    if not jitter and attempt:
        assert backoff(attempt - 1, low, high) <= delay
