"""Fraud detection: a mail about every suspicious international call (R9.4).

The port of Tariscope's shipped script fraud.cs. Bound to the event "call_processed" of an
observer profile, it reads each stored call from the view v_calls and sends a mail when the
call is

  - international (call type 5),
  - longer than MAX_CALL_DURATION_S seconds, and
  - made outside working hours (after END_OF_WORK or before BEGINNING_OF_WORK, in the
    PBX's local time) or on a Saturday or a Sunday,
  - and, only if MAX_CALL_COST is set, costs more than MAX_CALL_COST.

Changing it: edit the constants just below, and nothing else, as with the red lines of
fraud.cs. Keep the quotes around the times and the subject; write a number without quotes.

  MAX_CALL_DURATION_S     seconds a call must last to be suspicious (more than this: 150
                          lets a call of 151 s alert, not one of 150 s); any whole number, 0 too
  CALLTYPE_INTERNATIONAL  the call type looked at; 5 is international. Other types (the
                          column `calltype` in docs/scripts.md): 4 long-distance, 6 mobile...
  BEGINNING_OF_WORK       start of the working day, "HH:MM" or "HH:MM:SS"; a call before it
                          is outside working hours
  END_OF_WORK             end of the working day; a call after it (19:00:01, not 19:00:00)
                          is outside working hours
  MAX_CALL_COST           None: the cost does not matter. A number (e.g. 10.0): only calls
                          costing more than it alert, in the call's own currency; a call not
                          rated yet (no cost) then never alerts
  MAIL_TO                 "" sends to the default address of the mail settings
                          (TARISCOPE_ALERT_EMAIL); or an address, "security@example.com"
  SUBJECT                 the subject of the mail

The script uses Python's standard library only: it runs in a process of its own, without
Django, and reaches the system through `host` alone (docs/scripts.md, "The host API").
"""
import datetime
import decimal
import traceback

# ******************************************************************************************
MAX_CALL_DURATION_S = 150
CALLTYPE_INTERNATIONAL = 5
BEGINNING_OF_WORK = "08:00"
END_OF_WORK = "19:00"
MAX_CALL_COST = None
MAIL_TO = ""
SUBJECT = "Fraud Detection system"
# ******************************************************************************************

SATURDAY, SUNDAY = 5, 6  # datetime.weekday()

QUERY = ("SELECT id, originator, dialnumber, calldatetime, callseconds, calltype, cost "
         "FROM v_calls WHERE id = %s")


def as_datetime(value) -> datetime.datetime:
    """A calldatetime as the host hands it over: a datetime, or its ISO text."""
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value))


def as_time(text: str) -> datetime.time:
    """"08:00" or "08:00:00" as a time of day."""
    return datetime.time.fromisoformat(text.strip())


def suspicious(row: dict) -> bool:
    """fraud.cs's condition on one row of v_calls, with its strict comparisons."""
    start = as_datetime(row["calldatetime"])
    # The wall-clock time of the PBX, as CallDateTime is; an offset, if any, is not applied.
    time_of_day = start.time().replace(tzinfo=None)
    outside_hours = (time_of_day > as_time(END_OF_WORK)
                     or time_of_day < as_time(BEGINNING_OF_WORK))
    weekend = start.weekday() in (SATURDAY, SUNDAY)
    if not (int(row["calltype"]) == CALLTYPE_INTERNATIONAL
            and int(row["callseconds"]) > MAX_CALL_DURATION_S
            and (outside_hours or weekend)):
        return False
    if MAX_CALL_COST is None:
        return True
    # The article's addition `Cost > 10.0`. An unrated call has no cost to exceed it (in
    # fraud.cs reading a NULL cost would throw, and no mail would be sent either).
    if row.get("cost") is None:
        return False
    return decimal.Decimal(str(row["cost"])) > decimal.Decimal(str(MAX_CALL_COST))


def mail_body(call_id, row: dict) -> str:
    """fraud.cs's text, word for word (mail filters written for it still match), then the
    numbers, as the article suggests adding."""
    start = as_datetime(row["calldatetime"]).replace(tzinfo=None)
    return (f"Suspicious call detected. ID={call_id}"
            f" CallDateTime={start.isoformat(sep=' ')}"
            f" Call duration={int(row['callseconds'])}"
            f" Originator={row.get('originator') or ''}"
            f" Dialnumber={row.get('dialnumber') or ''}")


class FraudScanner:
    """The IScript of fraud.cs: init() keeps the host, main() checks one stored call."""

    def init(self, host):
        self.host = host

    def main(self, params):
        try:
            self.host.log("New call processing, ID= " + str(params["id"]))
            rows = self.host.query(QUERY, [params["id"]])
            # As fraud.cs: a call that is not in v_calls (any more) is passed over silently.
            if rows and suspicious(rows[0]):
                self.host.send_mail(MAIL_TO, SUBJECT, mail_body(params["id"], rows[0]))
        except Exception:
            self.host.log("Error running script: " + traceback.format_exc())
