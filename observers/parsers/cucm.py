"""Cisco Unified CM (CUCM) CDR flat files, as CDR Management sends them to a billing server. Pure.

A file starts with two header lines: the quoted field names, then their types (`INTEGER`,
`VARCHAR(50)`, `UNIQUEIDENTIFIER`, ...). Then one record per line, comma-separated, strings
quoted; the last line may have no newline. Fields are read by name from the header line, so
files of other CUCM versions (more or fewer fields) are read too. Data without a header line
is read in the standard order of Cisco's "CDR Field Descriptions" (which lists the fields "in
the order in which they appear in the CDR"; new versions add fields at the end): every field
read here is among the first 58, whose places have not moved.

Only end-of-call records (`cdrRecordType` 1) are calls. CMR (call diagnostics, type 2) rows
and any other type are skipped without a reject: they are not calls, and the raw archive
keeps them.

Times are epoch seconds in UTC, so `start` is an aware UTC datetime.
"""
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from observers.parsers.base import (
    MAX_NUMBER,
    MAX_SOURCE_KEY,
    MAX_TRUNK,
    CallRecord,
    ParseError,
    Reject,
    check_record,
    csv_fields,
    shown,
    split_lines,
)

# The CDR fields of CUCM 12.x-15.x in their standard order (Cisco's field descriptions; the
# same names as the header line of the real sample tests/data/cucm/cdr.txt).
STANDARD_FIELDS = (
    "cdrRecordType", "globalCallID_callManagerId", "globalCallID_callId", "origLegCallIdentifier",
    "dateTimeOrigination", "origNodeId", "origSpan", "origIpAddr", "callingPartyNumber",
    "callingPartyUnicodeLoginUserID", "origCause_location", "origCause_value",
    "origPrecedenceLevel", "origMediaTransportAddress_IP", "origMediaTransportAddress_Port",
    "origMediaCap_payloadCapability", "origMediaCap_maxFramesPerPacket",
    "origMediaCap_g723BitRate", "origVideoCap_Codec", "origVideoCap_Bandwidth",
    "origVideoCap_Resolution", "origVideoTransportAddress_IP", "origVideoTransportAddress_Port",
    "origRSVPAudioStat", "origRSVPVideoStat", "destLegIdentifier", "destNodeId", "destSpan",
    "destIpAddr", "originalCalledPartyNumber", "finalCalledPartyNumber",
    "finalCalledPartyUnicodeLoginUserID", "destCause_location", "destCause_value",
    "destPrecedenceLevel", "destMediaTransportAddress_IP", "destMediaTransportAddress_Port",
    "destMediaCap_payloadCapability", "destMediaCap_maxFramesPerPacket",
    "destMediaCap_g723BitRate", "destVideoCap_Codec", "destVideoCap_Bandwidth",
    "destVideoCap_Resolution", "destVideoTransportAddress_IP", "destVideoTransportAddress_Port",
    "destRSVPAudioStat", "destRSVPVideoStat", "dateTimeConnect", "dateTimeDisconnect",
    "lastRedirectDn", "pkid", "originalCalledPartyNumberPartition",
    "callingPartyNumberPartition", "finalCalledPartyNumberPartition", "lastRedirectDnPartition",
    "duration", "origDeviceName", "destDeviceName", "origCallTerminationOnBehalfOf",
    "destCallTerminationOnBehalfOf", "origCalledPartyRedirectOnBehalfOf",
    "lastRedirectRedirectOnBehalfOf", "origCalledPartyRedirectReason",
    "lastRedirectRedirectReason", "destConversationId", "globalCallId_ClusterID",
    "joinOnBehalfOf", "comment", "authCodeDescription", "authorizationLevel", "clientMatterCode",
    "origDTMFMethod", "destDTMFMethod", "callSecuredStatus", "origConversationId",
    "origMediaCap_Bandwidth", "destMediaCap_Bandwidth", "authorizationCodeValue",
    "outpulsedCallingPartyNumber", "outpulsedCalledPartyNumber", "origIpv4v6Addr",
    "destIpv4v6Addr", "origVideoCap_Codec_Channel2", "origVideoCap_Bandwidth_Channel2",
    "origVideoCap_Resolution_Channel2", "origVideoTransportAddress_IP_Channel2",
    "origVideoTransportAddress_Port_Channel2", "origVideoChannel_Role_Channel2",
    "destVideoCap_Codec_Channel2", "destVideoCap_Bandwidth_Channel2",
    "destVideoCap_Resolution_Channel2", "destVideoTransportAddress_IP_Channel2",
    "destVideoTransportAddress_Port_Channel2", "destVideoChannel_Role_Channel2",
    "IncomingProtocolID", "IncomingProtocolCallRef", "OutgoingProtocolID",
    "OutgoingProtocolCallRef", "currentRoutingReason", "origRoutingReason",
    "lastRedirectingRoutingReason", "huntPilotPartition", "huntPilotDN",
    "calledPartyPatternUsage", "IncomingICID", "IncomingOrigIOI", "IncomingTermIOI",
    "OutgoingICID", "OutgoingOrigIOI", "OutgoingTermIOI", "outpulsedOriginalCalledPartyNumber",
    "outpulsedLastRedirectingNumber", "wasCallQueued", "totalWaitTimeInQueue",
    "callingPartyNumber_uri", "originalCalledPartyNumber_uri", "finalCalledPartyNumber_uri",
    "lastRedirectDn_uri", "mobileCallingPartyNumber", "finalMobileCalledPartyNumber",
    "origMobileDeviceName", "destMobileDeviceName", "origMobileCallDuration",
    "destMobileCallDuration", "mobileCallType", "originalCalledPartyPattern",
    "finalCalledPartyPattern", "lastRedirectingPartyPattern", "huntPilotPattern",
    "origDeviceType", "destDeviceType", "origDeviceSessionID", "destDeviceSessionID",
)
# A row without a header line must reach destDeviceName, the last field read here.
HEADERLESS_MIN_FIELDS = STANDARD_FIELDS.index("destDeviceName") + 1
# Without these a row cannot be a call; the others default to empty.
_REQUIRED = ("dateTimeOrigination", "dateTimeConnect", "duration", "callingPartyNumber")
END_OF_CALL = 1
_INTEGER = re.compile(r"-?[0-9]+")
_TYPE = re.compile(r"[A-Z]+(\([0-9]+\))?")  # a field type on the second header line




def _is_types_line(row: list[str]) -> bool:
    """The second header line: a type per field, `INTEGER` first (cdrRecordType)."""
    return row[0] == "INTEGER" and all(_TYPE.fullmatch(value) for value in row)




def _integer(value: str, name: str, meaning: str = "a whole number") -> int:
    if not _INTEGER.fullmatch(value):
        raise ParseError(f"{name} {shown(value)} is not {meaning}")
    if len(value) > 18:  # int() of thousands of digits is slow, or refused
        raise ParseError(f"{name} {shown(value)} is out of range")
    return int(value)


def _epoch(value: str, name: str) -> datetime | None:
    """An epoch-seconds field as an aware UTC time; None for 0 or empty (never happened)."""
    if value in ("", "0"):
        return None
    seconds = _integer(value, name, "a time in epoch seconds")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{name} {shown(value)} is out of range") from None


def _limited(value: str, name: str, limit: int) -> str:
    if len(value) > limit:
        raise ParseError(f"{name} is {len(value)} characters long, more than {limit}")
    return value


def _named(row: list[str], header: list[str] | None) -> dict[str, str]:
    """The row's values by lower-cased field name (CUCM's own spelling is not consistent:
    globalCallID_callId beside globalCallId_ClusterID)."""
    if header is None:
        if len(row) < HEADERLESS_MIN_FIELDS:
            raise ParseError(
                f"a record without a header line needs at least {HEADERLESS_MIN_FIELDS} fields "
                f"in the standard CUCM order, found {len(row)}")
        names = [name.lower() for name in STANDARD_FIELDS]
    else:
        if len(row) != len(header):
            # Fewer: a cut line; more: two records run together. Neither is guessed at.
            raise ParseError(f"expected {len(header)} fields as in the header line, found {len(row)}")
        names = header
    return {name: value.strip() for name, value in zip(names, row, strict=False)}


def _record_type(row: list[str]) -> int:
    # First in every CUCM version, and what a header line is recognised by.
    return _integer(row[0].strip(), "cdrRecordType", "a number")


def parse_row(row: list[str], header: list[str] | None = None) -> CallRecord | None:
    """One CDR row; None when it is not an end-of-call record (a CMR or another type).
    `header` is the header line's names, lower-cased; None for the standard order."""
    if _record_type(row) != END_OF_CALL:
        return None
    f = _named(row, header)
    for name in _REQUIRED:
        if name.lower() not in f:
            raise ParseError(f"the header line has no {name} field")
    if "finalcalledpartynumber" not in f and "originalcalledpartynumber" not in f:
        raise ParseError("the header line has neither finalCalledPartyNumber nor "
                         "originalCalledPartyNumber")
    start = _epoch(f["datetimeorigination"], "dateTimeOrigination")
    if start is None:
        raise ParseError("dateTimeOrigination is empty")
    answered = _epoch(f["datetimeconnect"], "dateTimeConnect") is not None
    duration = _integer(f["duration"], "duration") if f["duration"] else 0
    if f.get("pkid"):
        source_key, key_name = f["pkid"], "pkid"
    else:
        key_name = "the source key"
        parts = [f.get(name, "") for name in ("globalcallid_callmanagerid", "globalcallid_callid",
                                               "origlegcallidentifier", "destlegidentifier")]
        if not parts[1]:
            raise ParseError("pkid and globalCallID_callId are both empty: the record cannot be "
                             "told apart from others")
        # The call id restarts with the CallManager service: the origination time keeps keys apart.
        source_key = "-".join([*parts, f["datetimeorigination"]])
    # The number the call finally reached (after forwarding and translation); the one first
    # dialled only when CUCM left the final one empty.
    called, called_name = f.get("finalcalledpartynumber", ""), "finalCalledPartyNumber"
    if not called:
        called, called_name = f.get("originalcalledpartynumber", ""), "originalCalledPartyNumber"
    return CallRecord(
        source_key=_limited(source_key, key_name, MAX_SOURCE_KEY),
        start=start,
        # A leg never connected has no talk time, whatever the counter says.
        duration=duration if answered else 0,
        direction=None,
        extension=_limited(f["callingpartynumber"], "callingPartyNumber", MAX_NUMBER),
        dialled=_limited(called, called_name, MAX_NUMBER),
        trunk=_limited(f.get("destdevicename", ""), "destDeviceName", MAX_TRUNK),
        answered=answered,
        origin_trunk=_limited(f.get("origdevicename", ""), "origDeviceName", MAX_TRUNK),
    )


def parse(data: bytes, options: Mapping | None = None):
    """Yield a CallRecord or a Reject for every CDR line of CUCM flat files; header lines and
    records that are not calls (CMR files) yield nothing. No options are read."""
    header: list[str] | None = None
    for number, text in split_lines(data):
        try:
            row = csv_fields(text)
            if row[0].strip().lower() == "cdrrecordtype":
                # A header line, at the top of a file or of the next file in the same data.
                header = [name.strip().lower() for name in row]
                continue
            if _is_types_line(row):
                continue
            record = parse_row(row, header)
            if record is not None:
                yield check_record(record)
        except ParseError as exc:
            yield Reject(number, text, str(exc))
