"""Fixtures for the connector tests: the fake 3CX (tests/restrictions/fake3cx.py) and the
v20 and v18 connectors pointed at it. The v20 side is held to 3CX's OpenAPI description;
where the description is not beside the repository (a clean clone elsewhere) the tests that
need it skip, and the v18 tests still run."""

import pytest

from restrictions.connectors import connector_for
from tests.restrictions.fake3cx import SPEC_FILE, Fake3CX, FakeClock, load_contract, spec_path


@pytest.fixture(scope="session")
def xapi_contract():
    path = spec_path()
    if path is None:
        pytest.skip(
            f"3CX's XAPI description ({SPEC_FILE}) is not in shared/3cx/ beside the repository, and "
            "the v20 fake is held to it; set TARISCOPE_XAPI_OPENAPI to its path to run these tests"
        )
    return load_contract(str(path))


@pytest.fixture
def clock():
    """Time for tokens: it moves only when a test advances it."""
    return FakeClock()


def _serve(fake):
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    if fake.violations:
        pytest.fail(
            "the fake 3CX received requests or gave answers that 3CX's API description does not allow:\n  "
            + "\n  ".join(fake.violations),
            pytrace=False,
        )


@pytest.fixture
def fake3cx(xapi_contract, clock):
    """A fake 3CX speaking v20 (held to the description) and v18."""
    yield from _serve(Fake3CX(xapi_contract, clock=clock))


@pytest.fixture
def fake3cx_v18(clock):
    """A fake 3CX for the v18 tests, which need no v20 description."""
    yield from _serve(Fake3CX(None, clock=clock))


@pytest.fixture
def v20_config(fake3cx):
    return {
        "type": "3cx-v20",
        "url": fake3cx.url,
        "client_id": fake3cx.client_id,
        "client_secret": fake3cx.client_secret,
        "close_by": "group",
        "closed_group": "No outbound",
        "poll_seconds": 2,
        "sync_minutes": 60,
        "timeout": 2,
    }


@pytest.fixture
def v20(v20_config, clock):
    connector = connector_for(v20_config, clock=clock)
    yield connector
    connector.disconnect()


@pytest.fixture
def v18_config(fake3cx_v18):
    return {
        "type": "3cx-v18",
        "url": fake3cx_v18.url,
        "username": fake3cx_v18.username,
        "password": fake3cx_v18.password,
        "close_by": "disable",
        "timeout": 2,
    }


@pytest.fixture
def v18(v18_config):
    connector = connector_for(v18_config)
    yield connector
    connector.disconnect()
