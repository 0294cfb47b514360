"""Fraud indicators: an alert for each sign of fraud on an outgoing call (R9.5).

Bound to the event "call_processed" of an observer profile, it reads each stored call with
host.call() and judges the outgoing ones (direction 0) against the indicators below, each
switched on or off by its constant. Every indicator that fires raises an alert (host.alert,
level "warning" or "critical", with the call's and the subscriber's ids) whose reason names
the call and the indicator, e.g.

  call 4711: international call from 101 to +882 16123456 (high-risk: international
  networks +882) at 02:14 on Sunday 2024-06-23

and a call that raised any alert is mailed once, with all its reasons. It may also be bound
to "periodic" (an interval of a few minutes): the same process serves both bindings, and at
"periodic" it forgets what has left the velocity window and logs what it holds in memory.

The indicators, for international calls (the call types of INTERNATIONAL_CALLTYPES):

  - cost above MAX_CALL_COST, in the call's own currency;
  - made outside working hours (before BEGINNING_OF_WORK or after END_OF_WORK, in the PBX's
    local time, calldatetime, with fraud.py's strict comparisons);
  - made on a weekend day (WEEKEND_DAYS) or on a holiday of the PBX's node: its country's
    public holidays and the node's own days, as rating uses them (host.holidays, asked once
    per device and year and kept HOLIDAYS_CACHE_S seconds; a failure is logged and asked
    again after 10 minutes);
  - to a high-risk destination: the longest prefix of HIGH_RISK_PREFIXES that begins the
    number in international form (v_calls.normalized; when that is empty, the digits of
    dialnumber without a leading DIAL_INTERNATIONAL_PREFIXES);

and for every outgoing call:

  - from a number unknown to the system (no subscriber holds the originator);
  - velocity rules in the manner of OpenSIPS' fraud_detection module (below).

Velocity rules. VELOCITY_PROFILES maps a profile name to its list of rules; the calls of an
observer profile are judged by the rules of VELOCITY_PROFILE_FOR[<observer profile>], or of
"default". Of the rules whose hours and days hold at the call's local start, the one with
the longest prefix that begins the destination number applies (as OpenSIPS' drouting match:
one rule per call). A rule is a dict:

  "name"        how alerts call it
  "prefix"      a prefix in international form ("882"), a list of them, or "" for any number
  "calltypes"   the call types it applies to, (5,); missing: all (not in OpenSIPS: a PBX in
                a country of a prefix would see its own national calls matched otherwise)
  "start", "end"  "HH:MM": the rule applies from start (included) to end (excluded); an end
                earlier than the start runs past midnight ("19:00" to "08:00"); equal: all day
  "days"        the days of the week of the call's start, OpenSIPS' way: "Mon-Fri",
                "Fri-Mon, Wed" (the first three letters of each day); "" or missing: every day
  "cpm", "concurrent", "sequential", "total", "duration"
                each a pair (warning, critical) of thresholds; a value AT or above one alerts
                at its level (OpenSIPS compares with >=). None, or a missing key, is off:
      cpm         calls per minute: the rule's calls of the originator that started in the
                  60 s up to this call's start, this one included
      concurrent  this call and the rule's calls of the originator whose [start, start +
                  duration] overlap it, among the calls held in memory: those that ended less
                  than VELOCITY_WINDOW_S before the latest start seen. A call stored later
                  than that (a PBX that uploads its records once a day) is counted without
                  the calls before it
      sequential  consecutive calls of the originator (within the window) to the same prefix
                  of the rule, or to the same number when the rule says "sequential_by":
                  "number" (OpenSIPS' code compares the numbers); a call elsewhere ends the run
      total       the rule's calls of the originator that started in the VELOCITY_WINDOW_S up
                  to this one (OpenSIPS counts per day; here per window, so that memory holds
                  the window alone)
      duration    the call's talk time, seconds

The counters are per originator (per PBX: the device and the number) and per rule, and are
kept in this process's memory only: they start empty when the dispatcher starts, when the
script is edited, and after a main() that was stopped at its timeout. Memory stays bounded
whatever the traffic: a call is forgotten VELOCITY_WINDOW_S after it ended, an originator
with nothing left in the window is forgotten, at most MAX_CALLS_PER_ORIGINATOR calls are
kept per originator and at most MAX_ORIGINATORS originators (the least recently seen go
first).

Changing it: edit the constants just below, and nothing else. Keep the quotes around texts
and times; write numbers without quotes; True/False and None as they are.

  MAX_CALL_COST           None: off. A number (10.0): an international call costing more
                          than it alerts, in the call's own currency; or one per currency,
                          {"EUR": 10, "UAH": 400} (a call in another currency is not judged).
                          An unrated call (no cost) never alerts
  INTERNATIONAL_CALLTYPES the call types the cost, time and destination indicators look at:
                          (5,) is international (the column calltype, docs/scripts.md). A
                          national call is never judged by them, so a PBX in a country of the
                          list does not alert on its own country. In North America, where the
                          Caribbean's +1 area codes are long-distance calls, add 4 (and the
                          area codes, "1876", to HIGH_RISK_PREFIXES)
  CHECK_WORKING_HOURS     True/False: the outside-working-hours indicator
  BEGINNING_OF_WORK       start of the working day, "HH:MM" or "HH:MM:SS"; a call before it
                          is outside working hours
  END_OF_WORK             end of the working day; a call after it (19:00:01, not 19:00:00)
                          is outside working hours
  CHECK_WEEKENDS          True/False: the weekend indicator
  WEEKEND_DAYS            the weekend, written as a rule's "days": "Sat-Sun"; "Fri-Sat"
  CHECK_HOLIDAYS          True/False: the holiday indicator (host.holidays)
  HOLIDAYS_CACHE_S        how long the holidays of a device and year are kept before they
                          are asked again (a node's days edited meanwhile count after it)
  CHECK_HIGH_RISK         True/False: the high-risk destination indicator
  HIGH_RISK_PREFIXES      prefix in international form -> what the alert calls it; where
                          each group of entries comes from is said above it. Add or remove
                          entries freely; the longest matching prefix wins ("8816" before
                          "881")
  DIAL_INTERNATIONAL_PREFIXES  what is taken off the front of dialnumber's digits when the
                          call has no normalized number: "+" and "00" ("011" in North America)
  CHECK_UNKNOWN_NUMBERS   True/False: the unknown-number indicator
  INDICATOR_LEVELS        the level of each indicator's alert, "warning" or "critical"
                          (velocity rules carry their own two levels)
  VELOCITY_PROFILES       profile name -> list of rules (above); {} or [] turns velocity off
  VELOCITY_PROFILE_FOR    observer profile name -> the velocity profile its calls use; an
                          observer profile not named uses "default"
  VELOCITY_WINDOW_S       seconds of calls the velocity counters hold (total calls count in it)
  MAX_CALLS_PER_ORIGINATOR, MAX_ORIGINATORS  the bounds of that memory (above)
  CLOSE_ON_CRITICAL       False. True: a call with a critical alert has its subscriber's
                          outgoing calls closed on the PBX (host.close_subscriber); a failure
                          (no such subscriber, the PBX refusing) is logged and mailed,
                          never raised
  MAIL_TO                 "" sends to the default address of the mail settings
                          (TARISCOPE_ALERT_EMAIL); or an address, "security@example.com"
  SUBJECT                 the subject of the mail

The mail's first sentence is fraud.py's (and fraud.cs's), so that mail filters written for
them match: "Suspicious call detected. ID=4711 CallDateTime=2024-06-23 02:14:00 Call
duration=600 Originator=101 Dialnumber=0088216123456", then one line per alert.

Standard library only: the script runs in a process of its own, without Django, and reaches
the system through `host` alone (docs/scripts.md, "The host API"). Any error is logged
(host.log) with its traceback and never leaves main().
"""
import collections
import datetime
import decimal
import time
import traceback

# ******************************************************************************************
MAX_CALL_COST = None
INTERNATIONAL_CALLTYPES = (5,)
CHECK_WORKING_HOURS = True
BEGINNING_OF_WORK = "08:00"
END_OF_WORK = "19:00"
CHECK_WEEKENDS = True
WEEKEND_DAYS = "Sat-Sun"
CHECK_HOLIDAYS = True
HOLIDAYS_CACHE_S = 86400
CHECK_HIGH_RISK = True
HIGH_RISK_PREFIXES = {
    # The CFCA's (Communications Fraud Control Association) most-reported countries where
    # fraud terminates: the top five of its 2011 Global Fraud Loss Survey, "Cuba, Somalia,
    # Sierra Leone, Zimbabwe, and Latvia" (SecureLogix, "Annual Toll Fraud Report and Some
    # Comments", 2012), and of its 2013 survey, "Latvia, Gambia, Somalia, Sierra Leone, and
    # Guinea" (TransNexus, "Global telecom fraud increases from 2011, still near 5-year low",
    # 2013). Commsrisk, "New IRSF Data Shows There Are No 'Low Risk' Destinations Any More"
    # (2020): "Countries like Cuba and Latvia often top the lists of destinations for IRSF".
    "53": "Cuba",
    "220": "Gambia",
    "224": "Guinea",
    "232": "Sierra Leone",
    "252": "Somalia",
    "263": "Zimbabwe",
    "371": "Latvia",
    # The ITU's International Premium Rate Service, country code +979 (ITU-T E.155; numbers,
    # UIPRNs, assigned under E.169.2: ITU, "What is UIPRN?"): charged at a premium rate by
    # design.
    "979": "international premium rate",
    # The ITU's shared codes not tied to a country: +881 the Global Mobile Satellite System
    # (Iridium +881 6 and 7, Globalstar +881 8 and 9), +882 and +883 International Networks
    # (ITU-T E.164.1; Wikipedia, "Global Mobile Satellite System" and "International
    # Networks (country code)"). Costly per minute, and favourite ranges of revenue share
    # numbers.
    "881": "satellite networks",
    "882": "international networks",
    "883": "international networks",
    # Countries that US carriers block by default as international revenue share fraud
    # destinations: Cox Communications, "Gambia, Guinea, Sierra Leone, Central African
    # Republic, Sao Tome, Seychelles, Somalia, Maldives, Azerbaijan, and Monaco" (TransNexus,
    # "Carriers Block International Calls to Stop Traffic Pumping Fraud", 2014), and Integra
    # (Electric Lightwave), whose "International Calling - Standard" blocks "Azerbaijan,
    # Congo, Cuba, Djibouti, Eritrea, Guinea, Ivory Coast, Latvia, Libya, Macedonia, Monaco,
    # North Korea, Principe and Sao Tome, Senegal, Sierra Leone, Slovenia, Somalia, Tuvalu,
    # Zimbabwe" (Electric Lightwave support, "International Calling Options"). Those already
    # above are not repeated. UK carriers bar or limit such "hotspot" destinations by default
    # too (Simwood, "Hotspots": 1 call per 12 hours and 1 channel; Optua, VoiceHost) but do
    # not publish their lists, so no entry comes from them.
    "218": "Libya",
    "221": "Senegal",
    "225": "Ivory Coast",
    "236": "Central African Republic",
    "239": "Sao Tome and Principe",
    "242": "Congo",  # Integra's "Congo": both Congos
    "243": "DR Congo",
    "248": "Seychelles",
    "253": "Djibouti",
    "291": "Eritrea",
    "377": "Monaco",
    "386": "Slovenia",
    "389": "North Macedonia",
    "688": "Tuvalu",
    "850": "North Korea",
    "960": "Maldives",
    "994": "Azerbaijan",
}
DIAL_INTERNATIONAL_PREFIXES = ("+", "00")
CHECK_UNKNOWN_NUMBERS = True
INDICATOR_LEVELS = {
    "cost": "critical",
    "working_hours": "warning",
    "weekend": "warning",
    "holiday": "warning",
    "high_risk": "warning",
    "unknown_number": "warning",
}
VELOCITY_PROFILES = {
    "default": [
        # Repeated calls to a high-risk destination escalate its warning: UK carriers allow
        # such "hotspots" 1 call per 12 hours and 1 channel by default (Simwood).
        {"name": "high-risk destinations", "prefix": sorted(HIGH_RISK_PREFIXES),
         "calltypes": INTERNATIONAL_CALLTYPES, "start": "00:00", "end": "00:00",
         "days": "Mon-Sun",
         "cpm": (2, 3), "concurrent": (2, 3), "total": (3, 6), "duration": (1800, 3600)},
        # Any other number: more than a person at a desk dials.
        {"name": "any destination", "prefix": "",
         "start": "00:00", "end": "00:00", "days": "Mon-Sun",
         "cpm": (5, 10), "concurrent": (3, 6), "sequential": (10, 20),
         "sequential_by": "number", "total": (60, 120), "duration": (7200, 14400)},
    ],
}
VELOCITY_PROFILE_FOR = {}
VELOCITY_WINDOW_S = 3600
MAX_CALLS_PER_ORIGINATOR = 1000
MAX_ORIGINATORS = 10000
CLOSE_ON_CRITICAL = False
MAIL_TO = ""
SUBJECT = "Fraud Detection system"
# ******************************************************************************************

OUTGOING = 0  # v_calls.direction
LEVELS = ("warning", "critical")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CALL_TYPES = {0: "unclassified", 1: "internal", 2: "incoming", 3: "local",
              4: "long-distance", 5: "international", 6: "mobile", 7: "service"}
PARAMETERS = ("cpm", "concurrent", "sequential", "total", "duration")
EPOCH = datetime.datetime(1970, 1, 1)
HOLIDAYS_RETRY_S = 600  # a host.holidays that failed is asked again after this
DEFAULT_PROFILE = "default"


# -- reading a row ---------------------------------------------------------------------------

def as_datetime(value) -> datetime.datetime | None:
    """A v_calls time as the host hands it over (a datetime, or its ISO text), naive: an
    aware one (calldatetime_utc on PostgreSQL) in UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.fromisoformat(str(value))
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def local_start(row) -> datetime.datetime:
    """The call's start in the PBX's wall-clock time (calldatetime, as fraud.py reads it)."""
    value = row["calldatetime"]
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    return datetime.datetime.fromisoformat(str(value)).replace(tzinfo=None)


def as_time(text: str) -> datetime.time:
    """"08:00" or "08:00:00" as a time of day."""
    return datetime.time.fromisoformat(str(text).strip())


def as_date(value) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


def whole(value, default=0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def destination(row) -> str:
    """The dialled number in international form: v_calls.normalized, or the digits of
    dialnumber without an international dialling prefix."""
    normalized = "".join(ch for ch in str(row.get("normalized") or "") if ch.isdigit())
    if normalized:
        return normalized
    dialled = str(row.get("dialnumber") or "").strip()
    for prefix in sorted(DIAL_INTERNATIONAL_PREFIXES, key=len, reverse=True):
        if prefix and dialled.startswith(prefix):
            dialled = dialled[len(prefix):]
            break
    return "".join(ch for ch in dialled if ch.isdigit())


def longest_prefix(number: str, prefixes) -> str | None:
    """The longest of `prefixes` (a dict or a set) that begins `number`, or None."""
    for length in range(len(number), -1, -1):
        if number[:length] in prefixes:
            return number[:length]
    return None


def parse_days(text) -> frozenset:
    """"Fri-Mon, Wed" -> the weekday() numbers it names; "" or None: every day."""
    if text is None or not str(text).strip():
        return frozenset(range(7))
    days = set()
    for part in str(text).split(","):
        names = [name.strip()[:3].title() for name in part.split("-")]
        if not 1 <= len(names) <= 2 or any(name not in DAYS for name in names):
            raise ValueError(f"days {text!r}: write them as 'Mon-Fri' or 'Fri-Mon, Wed'")
        first, last = DAYS.index(names[0]), DAYS.index(names[-1])
        day = first
        days.add(day)
        while day != last:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def in_hours(at: datetime.time, start: datetime.time, end: datetime.time) -> bool:
    """From `start` (included) to `end` (excluded), past midnight when end < start; equal
    bounds are the whole day."""
    if start == end:
        return True
    if start < end:
        return start <= at < end
    return at >= start or at < end


def timestamp(moment: datetime.datetime) -> float:
    return (moment - EPOCH).total_seconds()


# -- velocity rules --------------------------------------------------------------------------

class Rule:
    """One velocity rule of VELOCITY_PROFILES, checked once when the script is loaded."""

    def __init__(self, spec: dict):
        if not isinstance(spec, dict):
            raise ValueError(f"a velocity rule is a dict, not {spec!r}")
        self.name = str(spec.get("name") or "unnamed")
        prefixes = spec.get("prefix", "")
        if isinstance(prefixes, str):
            prefixes = [prefixes]
        self.prefixes = frozenset(str(prefix).lstrip("+") for prefix in prefixes)
        if not all(prefix.isdigit() or prefix == "" for prefix in self.prefixes):
            raise ValueError(f"rule {self.name!r}: a prefix is digits, not {prefixes!r}")
        try:
            self.start = as_time(spec.get("start") or "00:00")
            self.end = as_time(spec.get("end") or "00:00")
        except ValueError:
            raise ValueError(f"rule {self.name!r}: start and end are 'HH:MM'") from None
        try:
            self.days = parse_days(spec.get("days"))
        except ValueError as exc:
            raise ValueError(f"rule {self.name!r}: {exc}") from None
        calltypes = spec.get("calltypes")
        try:
            self.calltypes = None if calltypes is None else frozenset(
                int(calltype) for calltype in calltypes)
        except (TypeError, ValueError):
            raise ValueError(f"rule {self.name!r}: calltypes is a list of call types, "
                             f"(5,), not {calltypes!r}") from None
        self.sequential_by = spec.get("sequential_by", "prefix")
        if self.sequential_by not in ("prefix", "number"):
            raise ValueError(f"rule {self.name!r}: sequential_by is 'prefix' or 'number'")
        self.thresholds = {}
        for parameter in PARAMETERS:
            pair = spec.get(parameter)
            if pair is None:
                continue
            if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(
                    value is None or (isinstance(value, int | float) and value > 0)
                    for value in pair):
                raise ValueError(f"rule {self.name!r}: {parameter} is a pair (warning, "
                                 f"critical) of numbers above 0 or None, not {pair!r}")
            if any(value is not None for value in pair):
                self.thresholds[parameter] = tuple(pair)
        unknown = set(spec) - {"name", "prefix", "calltypes", "start", "end", "days",
                               "sequential_by", *PARAMETERS}
        if unknown:
            raise ValueError(f"rule {self.name!r}: unknown keys {sorted(unknown)}")

    def applies(self, at: datetime.datetime, calltype) -> bool:
        return (at.weekday() in self.days and in_hours(at.time(), self.start, self.end)
                and (self.calltypes is None or calltype in self.calltypes))

    def level(self, parameter: str, value) -> str | None:
        """The level `value` reaches (at or above a threshold), or None."""
        warning, critical = self.thresholds.get(parameter, (None, None))
        if critical is not None and value >= critical:
            return "critical"
        if warning is not None and value >= warning:
            return "warning"
        return None


def rules_parse(profiles: dict) -> dict:
    """VELOCITY_PROFILES checked: profile name -> [Rule]. A mistake stops the script at its
    loading, with the rule named."""
    parsed = {str(name): [Rule(spec) for spec in (rules or [])]
              for name, rules in (profiles or {}).items()}
    for observer, name in VELOCITY_PROFILE_FOR.items():
        if name not in parsed:
            raise ValueError(f"VELOCITY_PROFILE_FOR[{observer!r}]: no velocity profile "
                             f"{name!r} in VELOCITY_PROFILES")
    return parsed


def rule_match(rules, number: str, at: datetime.datetime, calltype=None):
    """(rule, matched prefix) of the rule that applies at `at` (and to the call type) with
    the longest prefix of `number`; the first such rule on a tie. None when none applies."""
    best = None
    for rule in rules:
        if not rule.applies(at, calltype):
            continue
        prefix = longest_prefix(number, rule.prefixes)
        if prefix is not None and (best is None or len(prefix) > len(best[1])):
            best = (rule, prefix)
    return best


class Originator:
    """What memory holds of one originator: its calls in the window, in the order they were
    stored, as (start, end, rule name, sequential key)."""

    __slots__ = ("calls", "until")

    def __init__(self):
        self.calls = collections.deque(maxlen=max(1, int(MAX_CALLS_PER_ORIGINATOR)))
        self.until = float("-inf")  # the latest end of its calls

    def prune(self, horizon: float) -> None:
        """Forget the calls that ended before `horizon`."""
        if self.calls and self.until < horizon:
            self.calls.clear()
            return
        while self.calls and self.calls[0][1] < horizon:
            self.calls.popleft()


# -- the script ------------------------------------------------------------------------------

class FraudRules:
    """init() checks the rules; main() judges one stored call, or tidies memory at
    "periodic"."""

    def init(self, host):
        self.host = host
        for name, level in INDICATOR_LEVELS.items():
            if level not in LEVELS:
                raise ValueError(f"INDICATOR_LEVELS[{name!r}] is 'warning' or 'critical'")
        as_time(BEGINNING_OF_WORK), as_time(END_OF_WORK), parse_days(WEEKEND_DAYS)
        self.velocity = rules_parse(VELOCITY_PROFILES)
        self.originators = collections.OrderedDict()  # (device id, number) -> Originator
        self.holidays = {}  # (device id, year) -> (asked at, frozenset of dates or None)
        self.clock = float("-inf")  # the latest start seen (UTC seconds)
        self.swept_at = float("-inf")

    def main(self, params):
        try:
            if params.get("event") == "periodic":
                self.sweep()
                self.host.log(f"fraud_rules: {self.memory_summary()}")
                return
            if params.get("event", "call_processed") != "call_processed":
                return
            row = self.host.call(params["id"])
            if row is None:
                self.host.log(f"Call {params['id']} is not in v_calls any more: passed over")
                return
            self.judge(row, params.get("profile"))
        except Exception:
            self.host.log("Error running script: " + traceback.format_exc())

    # -- one call --------------------------------------------------------------------------

    def judge(self, row: dict, profile) -> None:
        if whole(row.get("direction"), None) != OUTGOING:
            return
        local = local_start(row)
        number = destination(row)
        alerts = []  # (level, reason)
        calltype = whole(row.get("calltype"), None)
        if calltype in INTERNATIONAL_CALLTYPES:
            alerts += self.international(row, local, number)
        if CHECK_UNKNOWN_NUMBERS and row.get("subscriber_id") is None:
            alerts.append((level_of("unknown_number"), describe(
                row, local, number, note="the calling number is unknown to the system")))
        alerts += self.velocity_check(row, local, number, profile)
        if alerts:
            self.report(row, local, alerts)

    def international(self, row, local, number) -> list:
        alerts = []
        limit = cost_limit(row)
        if limit is not None and row.get("cost") is not None:
            cost = decimal.Decimal(str(row["cost"]))
            if cost > limit:
                amount = " ".join(str(part) for part in (cost, row.get("currency")) if part)
                alerts.append((level_of("cost"), describe(
                    row, local, number, note=f"costs {amount}, above the limit of {limit}")))
        if CHECK_WORKING_HOURS:
            at = local.time()
            if at > as_time(END_OF_WORK) or at < as_time(BEGINNING_OF_WORK):
                alerts.append((level_of("working_hours"), describe(
                    row, local, number,
                    note=f"outside working hours, {BEGINNING_OF_WORK} to {END_OF_WORK}")))
        if CHECK_WEEKENDS and local.weekday() in parse_days(WEEKEND_DAYS):
            alerts.append((level_of("weekend"), describe(
                row, local, number, note="on a weekend day")))
        if CHECK_HOLIDAYS and row.get("device_id") is not None:
            days = self.holidays_of(row["device_id"], local.year)
            if local.date() in days:
                alerts.append((level_of("holiday"), describe(
                    row, local, number, note="on a public holiday of the PBX's node")))
        if CHECK_HIGH_RISK and number:
            prefix = longest_prefix(number, HIGH_RISK_PREFIXES)
            if prefix:
                alerts.append((level_of("high_risk"), describe(
                    row, local, number, prefix=prefix,
                    destination_note=f"high-risk: {HIGH_RISK_PREFIXES[prefix]} +{prefix}")))
        return alerts

    def holidays_of(self, device_id, year: int) -> frozenset:
        """The holidays of the device's node in `year`, asked of the host once per device and
        year (again after HOLIDAYS_CACHE_S); none while the host cannot say."""
        key, now = (device_id, year), time.monotonic()
        cached = self.holidays.get(key)
        if cached is not None:
            asked_at, days = cached
            if now - asked_at < (HOLIDAYS_CACHE_S if days is not None else HOLIDAYS_RETRY_S):
                return days or frozenset()
        try:
            days = frozenset(as_date(day) for day in self.host.holidays(year, device_id) or ())
        except Exception as exc:
            self.host.log(f"host.holidays({year}, {device_id}) failed, the holiday indicator "
                          f"is off for that device and year for now: {type(exc).__name__}: "
                          f"{exc}")
            days = None
        if len(self.holidays) > 1000:  # devices x years: a few; a bound all the same
            self.holidays.clear()
        self.holidays[key] = (now, days)
        return days or frozenset()

    # -- velocity --------------------------------------------------------------------------

    def velocity_check(self, row, local, number, profile) -> list:
        rules = self.velocity.get(VELOCITY_PROFILE_FOR.get(profile, DEFAULT_PROFILE)) or []
        calltype = whole(row.get("calltype"), None)
        match = rule_match(rules, number, local, calltype) if rules else None
        if match is None:
            return []
        rule, prefix = match
        utc = as_datetime(row.get("calldatetime_utc")) or local
        start = timestamp(utc)
        seconds = max(0, whole(row.get("callseconds")))
        end = start + seconds
        # The clock: the latest start seen, not past tomorrow (a record dated 2099 would
        # otherwise empty memory).
        self.clock = max(self.clock, min(start, time.time() + 86400))
        window = float(VELOCITY_WINDOW_S)
        key = (row.get("device_id"), str(row.get("originator") or ""))
        state = self.originators.get(key)
        if state is None:
            state = self.originators[key] = Originator()
        state.prune(self.clock - window)
        sequential_key = number if rule.sequential_by == "number" else prefix
        values = {"cpm": 1, "concurrent": 1, "sequential": 1, "total": 1,
                  "duration": seconds}
        for other_start, other_end, other_rule, _ in state.calls:
            if other_rule != rule.name:
                continue
            if start - 60 < other_start <= start:
                values["cpm"] += 1
            if start - window < other_start <= start:
                values["total"] += 1
            if other_start < end and start < other_end:
                values["concurrent"] += 1
        for other_start, _, other_rule, other_key in reversed(state.calls):
            if other_start <= start - window:
                continue
            if other_rule != rule.name or other_key != sequential_key:
                break
            values["sequential"] += 1
        state.calls.append((start, end, rule.name, sequential_key))
        state.until = max(state.until, end)
        self.originators.move_to_end(key)
        self.forget(window)
        alerts = []
        for parameter in PARAMETERS:
            level = rule.level(parameter, values[parameter])
            if level:
                alerts.append((level, describe(row, local, number, note=velocity_note(
                    rule, parameter, values[parameter], prefix, window))))
        return alerts

    def forget(self, window: float) -> None:
        """Keep memory bounded: the least recently seen originators go first when they have
        nothing left in the window, or when there are more than MAX_ORIGINATORS; all of
        memory is swept once per window of call time."""
        horizon = self.clock - window
        while self.originators:
            oldest = next(iter(self.originators.values()))
            if oldest.until >= horizon and len(self.originators) <= max(1, MAX_ORIGINATORS):
                break
            self.originators.popitem(last=False)
        if self.clock - self.swept_at >= window:
            self.sweep()

    def sweep(self) -> None:
        """Forget every call and originator that has left the window."""
        horizon = self.clock - float(VELOCITY_WINDOW_S)
        for key in list(self.originators):
            state = self.originators[key]
            state.prune(horizon)
            if not state.calls:
                del self.originators[key]
        now = time.monotonic()
        for key, (asked_at, _) in list(self.holidays.items()):
            if now - asked_at >= HOLIDAYS_CACHE_S:
                del self.holidays[key]
        self.swept_at = self.clock

    def memory_summary(self) -> str:
        calls = sum(len(state.calls) for state in self.originators.values())
        return (f"{len(self.originators)} originators and {calls} calls in the velocity "
                f"window, holidays of {len(self.holidays)} device-years")

    # -- what an alerting call causes ------------------------------------------------------

    def report(self, row, local, alerts) -> None:
        call_id, subscriber_id = row.get("id"), row.get("subscriber_id")
        for level, reason in alerts:
            try:
                self.host.alert(level, reason, call_id=call_id, subscriber_id=subscriber_id)
            except Exception as exc:
                self.host.log(f"host.alert failed: {type(exc).__name__}: {exc}")
        closing = ""
        critical = [reason for level, reason in alerts if level == "critical"]
        if CLOSE_ON_CRITICAL and critical:
            closing = self.close(subscriber_id, critical)
        levels = sorted({level for level, _ in alerts}, key=LEVELS.index, reverse=True)
        self.host.log(f"call {call_id}: {len(alerts)} alert(s), {', '.join(levels)}")
        try:
            self.host.send_mail(MAIL_TO, SUBJECT, mail_body(row, local, alerts, closing))
        except Exception as exc:
            self.host.log(f"The mail about call {call_id} was not sent: "
                          f"{type(exc).__name__}: {exc}")

    def close(self, subscriber_id, reasons) -> str:
        """host.close_subscriber for a critical alert: what happened, in words (logged)."""
        if subscriber_id is None:
            outcome = "Outgoing calls not closed: the calling number is unknown to the system"
        else:
            try:
                self.host.close_subscriber(subscriber_id, "; ".join(reasons)[:1000])
                outcome = f"Outgoing calls of subscriber {subscriber_id} closed on the PBX"
            except Exception as exc:
                outcome = (f"Outgoing calls of subscriber {subscriber_id} could not be "
                           f"closed: {type(exc).__name__}: {exc}")
        self.host.log(outcome)
        return outcome


# -- texts -----------------------------------------------------------------------------------

def level_of(indicator: str) -> str:
    """INDICATOR_LEVELS of an indicator; "warning" when it is not named there."""
    return INDICATOR_LEVELS.get(indicator, "warning")


def cost_limit(row) -> decimal.Decimal | None:
    """MAX_CALL_COST for the call's currency, or None (off, or not for that currency)."""
    limit = MAX_CALL_COST
    if isinstance(limit, dict):
        limit = limit.get(str(row.get("currency") or ""))
    if limit is None:
        return None
    return decimal.Decimal(str(limit))


def number_text(row, number: str, prefix: str | None = None) -> str:
    if not number:
        return str(row.get("dialnumber") or "an unknown number")
    if prefix and len(number) > len(prefix):
        return f"+{prefix} {number[len(prefix):]}"
    return f"+{number}"


def describe(row, local, number, *, prefix=None, destination_note="", note="") -> str:
    """'call 4711: international call from 101 to +882 16123456 (high-risk: ...) at 02:14
    on Sunday 2024-06-23 (note)'."""
    kind = CALL_TYPES.get(whole(row.get("calltype"), None), "outgoing")
    origin = row.get("originator") or "an unknown number"
    text = (f"call {row.get('id')}: {kind} call from {origin} to "
            f"{number_text(row, number, prefix)}")
    if destination_note:
        text += f" ({destination_note})"
    text += f" at {local:%H:%M} on {DAY_NAMES[local.weekday()]} {local.date().isoformat()}"
    if note:
        text += f" ({note})"
    return text


def velocity_note(rule, parameter, value, prefix, window) -> str:
    minutes = int(window // 60)
    said = {
        "cpm": f"{value} calls in a minute",
        "concurrent": f"{value} calls at the same time",
        "sequential": (f"{value} calls in a row to the same number"
                       if rule.sequential_by == "number" else
                       f"{value} calls in a row to +{prefix}" if prefix else
                       f"{value} calls in a row"),
        "total": f"{value} calls in {minutes} minutes",
        "duration": f"{value} s long",
    }[parameter]
    warning, critical = rule.thresholds[parameter]
    bounds = ", ".join(f"{name} at {bound}" for name, bound in
                       (("warning", warning), ("critical", critical)) if bound is not None)
    return f"velocity rule {rule.name!r}: {said}; {bounds}"


def mail_body(row, local, alerts, closing="") -> str:
    """fraud.py's first sentence (mail filters written for it still match), then the
    alerts, the most serious first, then what closing the subscriber did."""
    lines = [f"Suspicious call detected. ID={row.get('id')}"
             f" CallDateTime={local.isoformat(sep=' ')}"
             f" Call duration={whole(row.get('callseconds'))}"
             f" Originator={row.get('originator') or ''}"
             f" Dialnumber={row.get('dialnumber') or ''}", ""]
    ordered = sorted(alerts, key=lambda alert: LEVELS.index(alert[0]), reverse=True)
    lines += [f"{level}: {reason}" for level, reason in ordered]
    if closing:
        lines += ["", closing]
    return "\n".join(lines)
