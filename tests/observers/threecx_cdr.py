"""3CX CDR lines written for the tests (the real sample is GPL and is read from shared/).

Each builder returns one line in the v16-v18 default field order with the fields a test
names replaced; the defaults describe a plausible call on a Kyiv 3CX (extensions of three
digits, outside line 10000, access code 9).
"""
from observers.parsers.threecx import FIELDS_V18

OUTGOING = {
    "historyid": "Call 1001", "callid": "00000000c0ffee01_1", "duration": "00:01:01",
    "time-start": "2024/06/17 10:00:00", "time-answered": "2024/06/17 10:00:05",
    "time-end": "2024/06/17 10:01:06", "reason-terminated": "TerminatedBySrc",
    "from-no": "Ext.101", "to-no": "0441234567", "from-dn": "101", "to-dn": "10000",
    "dial-no": "90441234567", "reason-changed": "", "final-number": "0441234567",
    "final-dn": "10000", "bill-code": "", "bill-rate": "", "bill-cost": "", "bill-name": "",
    "chain": "Chain: Ext.101;0441234567;", "from-type": "Extension", "to-type": "Line",
    "final-type": "Line", "from-dispname": "Ivan Petrenko", "to-dispname": "",
    "final-dispname": "", "missed-queue-calls": "",
}
INCOMING = {
    **OUTGOING,
    "historyid": "Call 1002", "callid": "00000000c0ffee02_1", "duration": "00:02:00",
    "from-no": "+380501234567", "to-no": "Ext.102", "from-dn": "10000", "to-dn": "102",
    "dial-no": "", "final-number": "Ext.102", "final-dn": "102",
    "chain": "Chain: +380501234567;Ext.102;", "from-type": "Line", "to-type": "Extension",
    "final-type": "Extension", "from-dispname": "+380501234567", "to-dispname": "Olena",
}
INTERNAL = {
    **OUTGOING,
    "historyid": "Call 1003", "callid": "00000000c0ffee03_1", "duration": "00:00:30",
    "to-no": "Ext.102", "to-dn": "102", "dial-no": "102", "final-number": "Ext.102",
    "final-dn": "102", "chain": "Chain: Ext.101;Ext.102;", "to-type": "Extension",
    "final-type": "Extension", "to-dispname": "Olena",
}


def cdr_line(base: dict = OUTGOING, **fields: str) -> str:
    """One CDR line: `base` with `fields` replaced (underscores stand for hyphens)."""
    values = dict(base)
    for key, value in fields.items():
        name = key.replace("_", "-")
        assert name in values, f"not a 3CX field: {name}"
        values[name] = value
    return ",".join(values[name] for name in FIELDS_V18)


def cdr_file(*lines: str, newline: str = "\n") -> bytes:
    """Lines joined into the bytes of a CDR file (UTF-8, final newline)."""
    return "".join(line + newline for line in lines).encode("utf-8")
