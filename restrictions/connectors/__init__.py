"""R8.11: PBX connectors, one package per PBX family behind one interface (base.Connector).

    connector = connector_for(device_connector_config)   # chosen by config["type"]
    previous_state = connector.close("101")
    result = connector.reopen("101", previous_state)

Pure: no Django here or in the family packages.
"""
from restrictions.connectors.base import (
    CAPABILITIES,
    FAMILIES,
    ActiveCall,
    CallLeg,
    Connector,
    ConnectorConfigError,
    ConnectorError,
    Difference,
    Extension,
    NotSupported,
    PbxAuthRejected,
    PbxRefused,
    PbxServerError,
    PbxTimeout,
    PbxUnavailable,
    PbxUnreachable,
    Period,
    QueueCall,
    ReopenResult,
    ReopenStatus,
    UnknownExtension,
    config_problems,
    connector_for,
)

__all__ = [
    "CAPABILITIES",
    "FAMILIES",
    "ActiveCall",
    "CallLeg",
    "Connector",
    "ConnectorConfigError",
    "ConnectorError",
    "Difference",
    "Extension",
    "NotSupported",
    "PbxAuthRejected",
    "PbxRefused",
    "PbxServerError",
    "PbxTimeout",
    "PbxUnavailable",
    "PbxUnreachable",
    "Period",
    "QueueCall",
    "ReopenResult",
    "ReopenStatus",
    "UnknownExtension",
    "config_problems",
    "connector_for",
]
