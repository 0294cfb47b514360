"""docs/restrictions.md names every key a user can write: each connector family's (from
its own description of its keys) and the call control's."""
import importlib
from pathlib import Path

import pytest

from restrictions.connectors import FAMILIES
from restrictions.control import CALL_CONTROL_KEYS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "restrictions.md").read_text()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_key_of_each_connector_family_is_documented(family):
    connector = importlib.import_module(FAMILIES[family]).CONNECTOR
    missing = [key for key in connector.config_keys if f"`{key}`" not in DOC]
    assert f"`{family}`" in DOC and not missing, f"{family}: not in docs/restrictions.md: {missing}"


def test_every_call_control_key_is_documented():
    assert [key for key in CALL_CONTROL_KEYS if f"`{key}`" not in DOC] == []
