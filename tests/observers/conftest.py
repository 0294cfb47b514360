import shutil

import pytest

from tests.conftest import needs
from tests.observers.processes import OwnRedis


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of the test's own (tests.observers.processes.OwnRedis), not started."""
    needs(shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None,
          "needs redis-server and redis-cli (package redis-server)")
    redis = OwnRedis(tmp_path)
    yield redis
    redis.stop()
