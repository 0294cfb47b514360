"""3CX v18 through the management API of its web console: restrictions/connectors/threecx_v18/."""

from restrictions.connectors.threecx_v18.connector import CONFIG_KEYS, TYPE, ThreeCXv18Connector

CONNECTOR = ThreeCXv18Connector

__all__ = ["CONFIG_KEYS", "CONNECTOR", "TYPE", "ThreeCXv18Connector"]
