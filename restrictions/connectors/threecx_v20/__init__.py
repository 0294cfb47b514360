"""3CX v20 through its Configuration API (XAPI): restrictions/connectors/threecx_v20/."""

from restrictions.connectors.threecx_v20.connector import CONFIG_KEYS, TYPE, ThreeCXv20Connector

CONNECTOR = ThreeCXv20Connector

__all__ = ["CONFIG_KEYS", "CONNECTOR", "TYPE", "ThreeCXv20Connector"]
