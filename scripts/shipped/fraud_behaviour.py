"""Fraud detection by behaviour: a call compared with the usual behaviour of its subscriber,
its group and the whole company (R9.5; Tariscope sells this as a separate module).

Bind it to two events of the same observer profile; one process serves both:

  - "periodic" (suggested interval: 300 s): the profiles are (re)built from the calls of
    the last LEARN_DAYS days, at most every REBUILD_EVERY_S seconds. A build reads v_calls
    in pages of 10,000 rows (the host's limit) and stops after BUILD_BUDGET_S seconds, to go
    on at the next event, so that it never runs into the binding's timeout;
  - "call_processed": each stored call is judged against the profiles in memory and the
    day's running totals in memory: one host.call(), no query. Until the first build is
    complete (the first event after a start), the events go on with the build instead and
    their calls are judged once it is done.

What it learns, from outgoing calls only, for each subscriber (a number without a
subscriber: for that number), each group (from its subscribers' calls) and the company:

  - the hours of the week at which calls are made (168 counts); a time is "usual" when
    calls were made within an hour of it on the same kind of day: a weekday, or a weekend
    day or public holiday (thirty days hold four of each hour of the week, too few alone);
  - the destinations: the country of `normalized` by the longest match in COUNTRIES below
    (the NANP's Caribbean area codes count as countries of their own: +1876 is Jamaica,
    not the USA); an unknown code counts by its first three digits. The company's home
    country is the one its local, long-distance and mobile calls go to;
  - per day: the calls, their cost and the international minutes, as their median and the
    MAD (median absolute deviation) of their logarithm over the days with calls: a day's
    cost varies by multiples, not by amounts. Never a mean and a standard deviation, which
    one legitimate busy day in the month would blow up;
  - the duration of the calls (a histogram, for its 99th percentile).

What it alerts on (the reason in words; one alert per reason, subscriber and day at most,
and one more if that reason turns critical later the same day):

  - cost, calls or international minutes today far above the usual day: more than
    DAY_FACTOR times the base, and more than MAD_FACTOR robust deviations above it on the
    logarithmic scale (1.4826 x the MAD of the logarithms estimates their deviation);
    never below what alerts for the company's median subscriber-day (cost, calls) or
    INTL_MINUTES_DAY_MIN (minutes). The base is the subscriber's own median day;
  - ODD_HOURS_CALLS international calls in a day at times that are not usual for it;
  - a call to a HIGH_RISK_PREFIXES destination that neither the subscriber nor its group
    called in LEARN_DAYS days (critical when nobody in the company did either);
  - NEW_COUNTRIES_PER_DAY countries in a day that neither the subscriber nor its group
    called in LEARN_DAYS days;
  - an international call longer than LONG_CALL_FACTOR times the 99th percentile of the
    usual calls, and longer than LONG_CALL_MIN_S;
  - a number unknown to the system (an outgoing call without a subscriber, from a number
    that made no outgoing call in LEARN_DAYS days) making an international call, a call to
    a high-risk destination, or a call costing more than the company's median
    subscriber-day: the sign of a hijacked extension or trunk.

An alert is critical when the value is CRITICAL_MULTIPLE times its threshold (for counts:
CRITICAL_MULTIPLE times the count), warning otherwise. Each call with alerts gets one mail.

Minimum history: a subscriber is judged on its own profile once it has MIN_ACTIVE_DAYS
days with calls in the last LEARN_DAYS; before that against its group's (its subscribers'
days: the FALLBACK_QUANTILE quantile as the base, a busy member's day rather than the
median one), then the company's; the event log says so once per subscriber. With fewer
than MIN_ACTIVE_DAYS days of calls in the whole company nothing is judged yet.

Changing it: edit the constants just below, and nothing else. Write numbers without quotes.

  LEARN_DAYS              days of history the profiles are learnt from (whole local days,
                          before today)
  MIN_ACTIVE_DAYS         days with calls a subscriber (a group, the company) needs before
                          its own profile is used
  CALLTYPE_INTERNATIONAL  the call type of international calls (docs/scripts.md, calltype)
  HIGH_RISK_PREFIXES      destinations (country codes or longer prefixes of `normalized`,
                          digits only) known for fraud: satellite and international
                          networks, international premium rate, the Caribbean, parts of
                          Africa, Asia and Oceania. Add or remove as your carrier advises
  DAY_FACTOR              a day's cost, calls or minutes must exceed this many times the
                          base to alert
  MAD_FACTOR              ... and this many robust deviations above the base, on the
                          logarithmic scale, so that a subscriber whose days vary a lot is
                          held to a wider band (2.5: for a subscriber half of whose days
                          lie within a factor 2 of its median, from about 13 times it)
  INTL_MINUTES_DAY_MIN    international minutes in a day below this never alert (a
                          subscriber who never calls abroad may still make one long call)
  FALLBACK_QUANTILE       the quantile of a group's (the company's) subscriber-days used as
                          the base of a subscriber judged against it (0.9: the 90th
                          percentile)
  CRITICAL_MULTIPLE       how far past its threshold an alert turns critical
  ODD_HOURS_CALLS         international calls in a day at unusual times that alert
  USUAL_HOURS_MIN_SHARE   a time is usual when at least this share of the calls (and at
                          least one call) were made within an hour of it: 0.005 keeps a
                          single late call from making the whole night usual
  NEW_COUNTRIES_PER_DAY   new countries in a day that alert
  LONG_CALL_FACTOR        an international call longer than this many times the 99th
                          percentile of the usual calls alerts ...
  LONG_CALL_MIN_S         ... when it is longer than this too (seconds)
  CLOSE_ON_CRITICAL       True: a critical alert also closes the subscriber's outgoing calls
                          (host.close_subscriber, once a day); an error doing so is logged
  MAIL_TO                 "" sends to the default address of the mail settings
                          (TARISCOPE_ALERT_EMAIL); or an address, "security@example.com"
  SUBJECT                 the subject of the mail
  REBUILD_EVERY_S         seconds between the starts of two builds of the profiles
  BUILD_BUDGET_S          seconds a build may read per event before it goes on at the next
                          one; keep it well under the binding's timeout (10 s by default)
  MAX_DAY_TOTALS          day totals kept in memory (one per subscriber or number and day;
                          today's and yesterday's), the oldest dropped past it

Memory: the profiles take about 1 KB per subscriber, group and number; a build holds about
8 KB per subscriber until it ends; the day totals (under 1 KB each) are kept for today and
yesterday. Limits below the constants, not meant to be edited: PAGE_ROWS (the host's 10,000
rows per query), MAX_PENDING calls waiting for the first build (past it they are not
judged), MAX_SEEDED calls of today a fresh process counts into the day totals, MAX_FLAGGED
critical subscriber-days kept out of the next builds.

The script uses Python's standard library only: it runs in a process of its own, without
Django, and reaches the system through `host` alone (docs/scripts.md, "The host API").
"""
import datetime
import math
import time
import traceback

# ******************************************************************************************
LEARN_DAYS = 30
MIN_ACTIVE_DAYS = 7
CALLTYPE_INTERNATIONAL = 5
HIGH_RISK_PREFIXES = (
    "870", "881", "882", "883", "979",                       # satellite, networks, premium
    "53", "509", "1242", "1246", "1264", "1268", "1284", "1345", "1441", "1473", "1649",
    "1664", "1721", "1758", "1767", "1784", "1809", "1829", "1849", "1868", "1869",
    "1876",                                                  # the Caribbean
    "211", "220", "224", "231", "232", "235", "236", "239", "240", "241", "243", "245",
    "247", "248", "252", "257", "261", "269", "290", "291",  # Africa
    "850", "960", "967",                                     # Asia
    "674", "675", "676", "677", "678", "682", "683", "686", "688", "690", "691", "692",  # Oceania
)
DAY_FACTOR = 6
MAD_FACTOR = 2.5
INTL_MINUTES_DAY_MIN = 60
FALLBACK_QUANTILE = 0.9
CRITICAL_MULTIPLE = 3
ODD_HOURS_CALLS = 3
USUAL_HOURS_MIN_SHARE = 0.005
NEW_COUNTRIES_PER_DAY = 3
LONG_CALL_FACTOR = 3
LONG_CALL_MIN_S = 3600
CLOSE_ON_CRITICAL = False
MAIL_TO = ""
SUBJECT = "Fraud Detection system: unusual behaviour"
REBUILD_EVERY_S = 3600
BUILD_BUDGET_S = 5.0
MAX_DAY_TOTALS = 50_000
# ******************************************************************************************

PAGE_ROWS = 10_000  # the host's limit of rows per query
MAX_PENDING = 5_000  # calls waiting for the first build; past it they are not judged
MAX_SEEDED = 200_000  # today's calls a fresh process counts into the day totals
MAX_FLAGGED = 20_000  # subscriber-days with a critical alert, left out of learning
OUTGOING = 0
EXTERNAL_CALLTYPES = frozenset({3, 4, 5, 6})  # local, long-distance, international, mobile
DOMESTIC_CALLTYPES = frozenset({3, 4, 6})
ROBUST = 1.4826  # MAD x 1.4826 estimates a standard deviation, robustly
WEEKDAY, WEEKEND = 0, 1
HISTORY_QUERY = (
    'SELECT id, originator, calldatetime, calldatetime_utc, callseconds, calltype, cost, '
    'currency, normalized, subscriber_id, subscriber, group_id, "group", device_id '
    "FROM v_calls WHERE direction = 0 AND calldatetime_utc >= %s AND id > %s "
    "ORDER BY id LIMIT 10000")  # PAGE_ROWS

# ITU-T E.164 country codes ("code name", comma-separated), for the longest match.
COUNTRIES_TEXT = """
1 USA/Canada, 1242 Bahamas, 1246 Barbados, 1264 Anguilla, 1268 Antigua and Barbuda,
1284 British Virgin Islands, 1340 US Virgin Islands, 1345 Cayman Islands, 1441 Bermuda,
1473 Grenada, 1649 Turks and Caicos, 1658 Jamaica, 1664 Montserrat, 1670 Northern Mariana
Islands, 1671 Guam, 1684 American Samoa, 1721 Sint Maarten, 1758 Saint Lucia, 1767
Dominica, 1784 Saint Vincent, 1787 Puerto Rico, 1809 Dominican Republic, 1829 Dominican
Republic, 1849 Dominican Republic, 1868 Trinidad and Tobago, 1869 Saint Kitts and Nevis,
1876 Jamaica, 1939 Puerto Rico, 7 Russia/Kazakhstan, 20 Egypt, 211 South Sudan, 212 Morocco,
213 Algeria, 216 Tunisia, 218 Libya, 220 Gambia, 221 Senegal, 222 Mauritania, 223 Mali,
224 Guinea, 225 Cote d'Ivoire, 226 Burkina Faso, 227 Niger, 228 Togo, 229 Benin,
230 Mauritius, 231 Liberia, 232 Sierra Leone, 233 Ghana, 234 Nigeria, 235 Chad,
236 Central African Republic, 237 Cameroon, 238 Cape Verde, 239 Sao Tome and Principe,
240 Equatorial Guinea, 241 Gabon, 242 Congo, 243 DR Congo, 244 Angola, 245 Guinea-Bissau,
246 Diego Garcia, 247 Ascension, 248 Seychelles, 249 Sudan, 250 Rwanda, 251 Ethiopia,
252 Somalia, 253 Djibouti, 254 Kenya, 255 Tanzania, 256 Uganda, 257 Burundi,
258 Mozambique, 260 Zambia, 261 Madagascar, 262 Reunion/Mayotte, 263 Zimbabwe, 264 Namibia,
265 Malawi, 266 Lesotho, 267 Botswana, 268 Eswatini, 269 Comoros, 27 South Africa,
290 Saint Helena, 291 Eritrea, 297 Aruba, 298 Faroe Islands, 299 Greenland, 30 Greece,
31 Netherlands, 32 Belgium, 33 France, 34 Spain, 350 Gibraltar, 351 Portugal,
352 Luxembourg, 353 Ireland, 354 Iceland, 355 Albania, 356 Malta, 357 Cyprus, 358 Finland,
359 Bulgaria, 36 Hungary, 370 Lithuania, 371 Latvia, 372 Estonia, 373 Moldova, 374 Armenia,
375 Belarus, 376 Andorra, 377 Monaco, 378 San Marino, 379 Vatican, 380 Ukraine, 381 Serbia,
382 Montenegro, 383 Kosovo, 385 Croatia, 386 Slovenia, 387 Bosnia and Herzegovina,
389 North Macedonia, 39 Italy, 40 Romania, 41 Switzerland, 420 Czechia, 421 Slovakia,
423 Liechtenstein, 43 Austria, 44 United Kingdom, 45 Denmark, 46 Sweden, 47 Norway,
48 Poland, 49 Germany, 500 Falkland Islands, 501 Belize, 502 Guatemala, 503 El Salvador,
504 Honduras, 505 Nicaragua, 506 Costa Rica, 507 Panama, 508 Saint Pierre and Miquelon,
509 Haiti, 51 Peru, 52 Mexico, 53 Cuba, 54 Argentina, 55 Brazil, 56 Chile, 57 Colombia,
58 Venezuela, 590 Guadeloupe, 591 Bolivia, 592 Guyana, 593 Ecuador, 594 French Guiana,
595 Paraguay, 596 Martinique, 597 Suriname, 598 Uruguay, 599 Curacao/Caribbean Netherlands,
60 Malaysia, 61 Australia, 62 Indonesia, 63 Philippines, 64 New Zealand, 65 Singapore,
66 Thailand, 670 Timor-Leste, 672 Norfolk Island, 673 Brunei, 674 Nauru,
675 Papua New Guinea, 676 Tonga, 677 Solomon Islands, 678 Vanuatu, 679 Fiji, 680 Palau,
681 Wallis and Futuna, 682 Cook Islands, 683 Niue, 685 Samoa, 686 Kiribati,
687 New Caledonia, 688 Tuvalu, 689 French Polynesia, 690 Tokelau, 691 Micronesia,
692 Marshall Islands, 800 International Freephone, 808 International Shared Cost,
81 Japan, 82 South Korea, 84 Vietnam, 850 North Korea, 852 Hong Kong, 853 Macau,
855 Cambodia, 856 Laos, 86 China, 870 Inmarsat, 878 Universal Personal Telecommunications,
880 Bangladesh, 881 Global Mobile Satellite System, 882 International Networks,
883 International Networks, 886 Taiwan, 888 OCHA, 90 Turkey, 91 India, 92 Pakistan,
93 Afghanistan, 94 Sri Lanka, 95 Myanmar, 960 Maldives, 961 Lebanon, 962 Jordan, 963 Syria,
964 Iraq, 965 Kuwait, 966 Saudi Arabia, 967 Yemen, 968 Oman, 970 Palestine,
971 United Arab Emirates, 972 Israel, 973 Bahrain, 974 Qatar, 975 Bhutan, 976 Mongolia,
977 Nepal, 979 International Premium Rate, 98 Iran, 992 Tajikistan, 993 Turkmenistan,
994 Azerbaijan, 995 Georgia, 996 Kyrgyzstan, 998 Uzbekistan
"""
COUNTRIES = dict(item.strip().split(" ", 1) for item in " ".join(COUNTRIES_TEXT.split())
                 .split(","))
_CODE_LENGTHS = sorted({len(code) for code in COUNTRIES}, reverse=True)


# -- plain values ------------------------------------------------------------------------


def utc_now() -> datetime.datetime:
    """Now, in UTC without the zone (as the rows' calldatetime_utc, once made naive)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def as_datetime(value) -> datetime.datetime | None:
    """A datetime as the host hands it over (a datetime, or its ISO text), without a zone:
    an aware one is first taken to UTC (calldatetime_utc on PostgreSQL)."""
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.fromisoformat(str(value))
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def as_float(value) -> float:
    """A cost (a Decimal, its text, or None for a call not rated) as a number."""
    return 0.0 if value is None or value == "" else float(value)


def country_of(normalized: str) -> str:
    """The country code of a number in international form, by the longest match in
    COUNTRIES; an unknown code: the first three digits."""
    for length in _CODE_LENGTHS:
        if normalized[:length] in COUNTRIES:
            return normalized[:length]
    return normalized[:3]


def high_risk(normalized: str) -> bool:
    return normalized.startswith(HIGH_RISK_PREFIXES)


def quantile(values: list, q: float) -> float:
    """The q quantile of the values (sorted), by linear interpolation; 0 for none."""
    if not values:
        return 0.0
    position = (len(values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def day_type(day: datetime.date, holidays=frozenset()) -> int:
    return WEEKEND if day.weekday() >= 5 or day in holidays else WEEKDAY


def duration_bucket(seconds: int) -> int:
    return int(10 * math.log1p(max(seconds, 0)))  # about 10 % wide


def bucket_seconds(bucket: int) -> float:
    return math.expm1((bucket + 1) / 10)  # the bucket's upper edge


def money(value: float) -> str:
    return f"{value:,.2f}"


def minutes(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def destination(code: str) -> str:
    return f"+{code} ({COUNTRIES.get(code, 'unknown code')})"


class DayStat:
    """One kind of daily total (cost, calls, international minutes) over the days with
    calls: its median, its base (the median, or a group's FALLBACK_QUANTILE quantile) and
    its robust spread: 1.4826 x the MAD of the logarithm of the days' totals (a day's cost
    varies by multiples, not by amounts: one subscriber's days all cost about 10, another's
    range from 5 to 50)."""

    __slots__ = ("median", "base", "spread")

    def __init__(self, values: list, base_quantile: float = 0.5):
        values = sorted(values)
        self.median = quantile(values, 0.5)
        self.base = quantile(values, base_quantile)
        logs = [math.log1p(value) for value in values]
        middle = quantile(logs, 0.5)
        self.spread = ROBUST * quantile(sorted(abs(log - middle) for log in logs), 0.5)

    def threshold(self, floor: float = 0.0) -> float:
        """Above it a day is far outside: DAY_FACTOR x the base, and MAD_FACTOR robust
        deviations above the base (on the logarithmic scale); never below `floor`."""
        return max(DAY_FACTOR * self.base,
                   math.expm1(math.log1p(self.base) + MAD_FACTOR * self.spread), floor)


class Profile:
    """The usual behaviour of one subscriber, number, group or the company."""

    __slots__ = ("kind", "label", "active_days", "calls", "usual", "countries", "cost",
                 "calls_day", "intl_minutes", "p99_seconds")

    def __init__(self, kind: str, label: str):
        self.kind, self.label = kind, label  # kind: subscriber, number, group, company
        self.active_days = self.calls = 0
        self.usual = 0  # bit day_type * 24 + hour: a usual time
        self.countries = frozenset()
        self.cost = self.calls_day = self.intl_minutes = DayStat([])
        self.p99_seconds = 0.0

    @property
    def fallback(self) -> bool:
        return self.kind in ("group", "company")

    def usual_at(self, kind_of_day: int, hour: int) -> bool:
        return bool(self.usual >> (kind_of_day * 24 + hour) & 1)

    def who(self) -> str:
        return {"subscriber": "this subscriber", "number": "this number",
                "company": "the company"}.get(self.kind, f"its group '{self.label}'")

    def base_label(self) -> str:
        if not self.fallback:
            return f"{self.who()}'s median day of the last {LEARN_DAYS}"
        percentile = f"{FALLBACK_QUANTILE * 100:g}th percentile"
        if self.kind == "company":
            return f"the {percentile} of the company's subscriber-days"
        return f"the {percentile} of the days of its group '{self.label}'"


class _Tally:
    """What a build counts for one subscriber, number, group or the company."""

    __slots__ = ("label", "group_id", "days", "hours", "countries", "durations", "members")

    def __init__(self, label=""):
        self.label, self.group_id = label, None
        self.days = {}  # date -> [calls, cost, international seconds]
        self.hours = [0] * 168  # weekday * 24 + hour, a holiday as a Sunday
        self.countries = set()
        self.durations = {}  # duration_bucket -> calls
        self.members = None  # a group's or the company's: its members' days, at the end

    def add(self, day, hour_of_week, seconds, cost, international, country):
        counts = self.days.get(day)
        if counts is None:
            counts = self.days[day] = [0, 0.0, 0]
        counts[0] += 1
        counts[1] += cost
        if international:
            counts[2] += seconds
        self.hours[hour_of_week] += 1
        if country:
            self.countries.add(country)
        if seconds > 0:
            bucket = duration_bucket(seconds)
            self.durations[bucket] = self.durations.get(bucket, 0) + 1


class Profiles:
    """The learnt model: a Profile per subscriber, number, group and the company, the
    numbers seen making outgoing calls, and the company's home country."""

    def __init__(self, days=(None, None)):
        self.first_day, self.last_day = days
        self.subscribers, self.numbers, self.groups = {}, {}, {}
        self.company = Profile("company", "")
        self.known_numbers = frozenset()
        self.home = None
        self.holidays = {}  # device id -> frozenset of dates
        self.calls = 0

    def reference(self, key, group_id) -> tuple:
        """(the profile a caller is judged against, its own profile or None)."""
        own = (self.subscribers if key[0] == "s" else self.numbers).get(key[1])
        if own is not None and own.active_days >= MIN_ACTIVE_DAYS:
            return own, own
        group = self.groups.get(group_id)
        if key[0] == "s" and group is not None and group.active_days >= MIN_ACTIVE_DAYS:
            return group, own
        if self.company.active_days >= MIN_ACTIVE_DAYS:
            return self.company, own
        return None, own


def local_today(row: dict, now: datetime.datetime) -> datetime.date:
    """Today in the zone of the row's PBX: `now` (UTC) moved by the row's own offset
    (calldatetime - calldatetime_utc), so that a PBX in any zone gets its own day."""
    start = as_datetime(row["calldatetime"])
    utc = as_datetime(row.get("calldatetime_utc")) or start
    return (now + (start - utc)).date()


class ProfileBuilder:
    """Learns Profiles from rows of v_calls (outgoing calls; any order, page by page).

    `now` is the UTC time of the build: the LEARN_DAYS whole days before a row's local
    today are learnt, today's calls are not. `exclude` holds (key, day) pairs not to learn:
    the days a caller was critical. `holidays`: device id -> its public holidays."""

    def __init__(self, now: datetime.datetime, exclude=frozenset(), holidays=None):
        self.now = now
        self.exclude = exclude
        self.holidays_of = holidays  # device id -> its holidays (dates), or None
        self.holidays = {}
        self.tallies = {}
        self.numbers = set()  # the numbers that made the calls learnt
        self.rows = 0
        self.first_day = self.last_day = None
        self.domestic = {}  # country -> domestic calls (local, long-distance, mobile)
        self.group_names = {}

    def add(self, rows) -> None:
        for row in rows:
            self.rows += 1
            if int(row.get("direction") or OUTGOING) != OUTGOING:
                continue
            start = as_datetime(row["calldatetime"])
            day = start.date()
            age = (local_today(row, self.now) - day).days
            if 0 < age <= LEARN_DAYS:
                self._learn(row, start, day)

    def _learn(self, row, start, day) -> None:
        subscriber_id = row.get("subscriber_id")
        key = ("s", subscriber_id) if subscriber_id is not None else (
            "o", str(row.get("originator") or ""))
        if (key, day) in self.exclude:
            return
        self.first_day = min(self.first_day or day, day)
        self.last_day = max(self.last_day or day, day)
        calltype = int(row.get("calltype") or 0)
        normalized = str(row.get("normalized") or "")
        country = country_of(normalized) if normalized and calltype in EXTERNAL_CALLTYPES \
            else None
        if country and calltype in DOMESTIC_CALLTYPES:
            self.domestic[country] = self.domestic.get(country, 0) + 1
        weekday = 6 if day in self._holidays(row.get("device_id")) else day.weekday()
        self.numbers.add(str(row.get("originator") or ""))
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = _Tally(str(row.get("subscriber") or key[1]))
        group_id = row.get("group_id")
        if key[0] == "s" and group_id is not None:
            tally.group_id = group_id
            self.group_names[group_id] = str(row.get("group") or group_id)
        tally.add(day, weekday * 24 + start.hour, int(row.get("callseconds") or 0),
                  as_float(row.get("cost")), calltype == CALLTYPE_INTERNATIONAL, country)

    def finish(self) -> Profiles:
        profiles = Profiles((self.first_day, self.last_day))
        profiles.calls = sum(sum(c[0] for c in t.days.values()) for t in self.tallies.values())
        profiles.home = max(self.domestic, key=self.domestic.get) if self.domestic else None
        profiles.holidays = {device: frozenset(days) for device, days in self.holidays.items()}
        profiles.known_numbers = frozenset(self.numbers)
        groups = {group_id: _Tally(name) for group_id, name in self.group_names.items()}
        company = _Tally("")
        for tally in groups.values():
            tally.members = []
        company.members = []
        for key, tally in self.tallies.items():
            own = _profile("subscriber" if key[0] == "s" else "number", tally)
            (profiles.subscribers if key[0] == "s" else profiles.numbers)[key[1]] = own
            targets = [company]
            if key[0] == "s" and tally.group_id in groups:
                targets.append(groups[tally.group_id])
            for target in targets:
                _merge(target, tally)
        for group_id, tally in groups.items():
            profiles.groups[group_id] = _profile("group", tally)
        profiles.company = _profile("company", company)
        return profiles

    def _holidays(self, device_id) -> frozenset:
        days = self.holidays.get(device_id)
        if days is None:
            days = frozenset()
            if self.holidays_of is not None and device_id is not None:
                days = frozenset(self.holidays_of(device_id) or ())
            self.holidays[device_id] = days
        return days


def _merge(target: _Tally, member: _Tally) -> None:
    """A member's calls into its group's or the company's tally; its days as member-days."""
    for day, counts in member.days.items():
        mine = target.days.setdefault(day, [0, 0.0, 0])
        for index in range(3):
            mine[index] += counts[index]
        target.members.append(counts)
    for index, count in enumerate(member.hours):
        target.hours[index] += count
    target.countries |= member.countries
    for bucket, count in member.durations.items():
        target.durations[bucket] = target.durations.get(bucket, 0) + count


def _profile(kind: str, tally: _Tally) -> Profile:
    profile = Profile(kind, tally.label)
    profile.active_days = len(tally.days)
    days = tally.members if tally.members is not None else list(tally.days.values())
    base = FALLBACK_QUANTILE if tally.members is not None else 0.5
    profile.calls_day = DayStat([counts[0] for counts in days], base)
    profile.cost = DayStat([counts[1] for counts in days], base)
    profile.intl_minutes = DayStat([counts[2] / 60 for counts in days], base)
    profile.calls = total = sum(tally.hours)
    profile.countries = frozenset(tally.countries)
    least = max(1.0, USUAL_HOURS_MIN_SHARE * total)
    pooled = [[0] * 24, [0] * 24]
    for hour_of_week, count in enumerate(tally.hours):
        weekday, hour = divmod(hour_of_week, 24)
        pooled[WEEKEND if weekday >= 5 else WEEKDAY][hour] += count
    for kind_of_day in (WEEKDAY, WEEKEND):
        counts = pooled[kind_of_day]
        for hour in range(24):
            near = counts[hour - 1] + counts[hour] + counts[(hour + 1) % 24]
            if near >= least:
                profile.usual |= 1 << (kind_of_day * 24 + hour)
    answered = sum(tally.durations.values())
    seen = 0
    for bucket in sorted(tally.durations):
        seen += tally.durations[bucket]
        if seen >= 0.99 * answered:
            profile.p99_seconds = bucket_seconds(bucket)
            break
    return profile


class Finding:
    """One reason to alert: its key (one alert per key, caller and day), level and words."""

    __slots__ = ("reason", "level", "text")

    def __init__(self, reason: str, level: str, text: str):
        self.reason, self.level, self.text = reason, level, text

    def __repr__(self):
        return f"Finding({self.reason!r}, {self.level!r}, {self.text!r})"


class _DayTotals:
    """A caller's running totals of one local day, and the alerts it already had."""

    __slots__ = ("calls", "cost", "intl_seconds", "odd_calls", "odd_first", "odd_last",
                 "new_countries", "new_high_risk", "unknown_calls", "alerted", "closed",
                 "currency")

    def __init__(self):
        self.calls = self.odd_calls = self.unknown_calls = self.new_high_risk = 0
        self.cost = 0.0
        self.intl_seconds = 0
        self.odd_first = self.odd_last = None
        self.new_countries = {}
        self.alerted = {}  # reason -> level
        self.closed = False
        self.currency = ""


def _level(value: float, threshold: float) -> str:
    return "critical" if value >= CRITICAL_MULTIPLE * threshold else "warning"


class Model:
    """Profiles and the day's running totals: learn() from rows, score() a call.

    No host in here: the script's class below feeds it; a test can drive it alone."""

    def __init__(self, profiles: Profiles | None = None):
        self.profiles = profiles
        self.totals = {}  # (key, day) -> _DayTotals
        self.newest_day = None
        self.noted = {}  # key -> the kind of profile a caller is judged against, once said

    def learn(self, rows, now: datetime.datetime, holidays=None) -> Profiles:
        builder = ProfileBuilder(now, holidays=holidays)
        builder.add(rows)
        self.profiles = builder.finish()
        return self.profiles

    # -- one call -------------------------------------------------------------------------

    def score(self, call: dict, counted: bool = False) -> tuple:
        """(findings, notes) for a stored call: the new alerts it raises, and lines to
        log. `counted`: the call is already in the day totals (a fresh process read it)."""
        notes = []
        if self.profiles is None or int(call.get("direction") or 0) != OUTGOING:
            return [], notes
        facts = self._facts(call)
        reference, own = self.profiles.reference(facts["key"], call.get("group_id"))
        self._note(facts, reference, own, call, notes)
        if reference is None:  # the company itself is too new: every number is unknown
            return [], notes
        totals = self._totals(facts["key"], facts["start"].date())
        if facts["unknown"]:
            if not counted:
                self._count_unknown(totals, facts)
            found = self._judge_unknown(totals, facts, call)
        else:
            if not counted:
                self._count(totals, facts, reference, call)
            found = self._judge(totals, facts, reference, call)
        return self._new(totals, found), notes

    def count(self, call: dict) -> None:
        """Add a call to the day totals without judging it (today's calls, at a start)."""
        if self.profiles is None or int(call.get("direction") or 0) != OUTGOING:
            return
        facts = self._facts(call)
        reference, _ = self.profiles.reference(facts["key"], call.get("group_id"))
        if reference is None:
            return
        totals = self._totals(facts["key"], facts["start"].date())
        if facts["unknown"]:
            self._count_unknown(totals, facts)
        else:
            self._count(totals, facts, reference, call)

    def _facts(self, call: dict) -> dict:
        start = as_datetime(call["calldatetime"])
        subscriber_id = call.get("subscriber_id")
        number = str(call.get("originator") or "")
        calltype = int(call.get("calltype") or 0)
        normalized = str(call.get("normalized") or "")
        external = bool(normalized) and calltype in EXTERNAL_CALLTYPES
        country = country_of(normalized) if external else None
        holidays = self.profiles.holidays.get(call.get("device_id"), ())
        return {"start": start, "number": number, "country": country,
                "key": ("s", subscriber_id) if subscriber_id is not None else ("o", number),
                "unknown": subscriber_id is None and number not in self.profiles.known_numbers,
                "international": calltype == CALLTYPE_INTERNATIONAL,
                "abroad": country is not None and country != self.profiles.home,
                "high_risk": external and high_risk(normalized),
                "seconds": int(call.get("callseconds") or 0),
                "cost": as_float(call.get("cost")),
                "day_type": day_type(start.date(), holidays)}

    def _totals(self, key, day) -> _DayTotals:
        totals = self.totals.get((key, day))
        if totals is None:
            if self.newest_day is None or day > self.newest_day:
                self.newest_day = day
                self.forget_before(day - datetime.timedelta(days=1))
            while len(self.totals) >= MAX_DAY_TOTALS:
                del self.totals[next(iter(self.totals))]
            totals = self.totals[(key, day)] = _DayTotals()
        return totals

    def forget_before(self, day: datetime.date) -> None:
        """Drop the day totals of the days before `day`."""
        for stale in [pair for pair in self.totals if pair[1] < day]:
            del self.totals[stale]

    def _note(self, facts, reference, own, call, notes) -> None:
        """Say once per caller that it is too new to be judged on its own (again only if
        what it is judged against changes)."""
        key = facts["key"]
        if facts["unknown"] or (reference is not None and reference is own):
            return
        kind = reference.kind if reference is not None else None
        if key in self.noted and self.noted[key] == kind:
            return
        if len(self.noted) >= MAX_DAY_TOTALS:
            self.noted.clear()
        self.noted[key] = kind
        days = own.active_days if own is not None else 0
        name = f" ({call.get('subscriber')})" if call.get("subscriber") else ""
        caller = f"subscriber {key[1]}{name}" if key[0] == "s" else f"number {key[1]}"
        against = ("not judged yet: the company itself has fewer than" if reference is None
                   else f"judged against {reference.who()} until it has")
        notes.append(f"{caller}: {days} days with calls in the last {LEARN_DAYS}, fewer than "
                     f"{MIN_ACTIVE_DAYS}; {against} {MIN_ACTIVE_DAYS}")

    # -- a known caller -------------------------------------------------------------------

    def _count(self, totals, facts, reference, call) -> None:
        totals.calls += 1
        totals.cost += facts["cost"]
        totals.currency = str(call.get("currency") or totals.currency or "")
        if facts["international"]:
            totals.intl_seconds += facts["seconds"]
            hour = facts["start"].hour
            if not reference.usual_at(facts["day_type"], hour):
                totals.odd_calls += 1
                moment = facts["start"].time()
                totals.odd_first = min(totals.odd_first or moment, moment)
                totals.odd_last = max(totals.odd_last or moment, moment)
        if facts["abroad"] and self._new_country(facts, call):
            totals.new_countries[facts["country"]] = facts["high_risk"]
            if facts["high_risk"]:
                totals.new_high_risk += 1

    def _known_countries(self, facts, call):
        key = facts["key"]
        own = (self.profiles.subscribers if key[0] == "s" else self.profiles.numbers).get(key[1])
        group = self.profiles.groups.get(call.get("group_id")) if key[0] == "s" else None
        return own, group

    def _whose(self, facts, call) -> str:
        """Whose destinations a new one is new to: "this subscriber or its group 'Sales'"."""
        _, group = self._known_countries(facts, call)
        whose = "this subscriber" if facts["key"][0] == "s" else "this number"
        return whose + (f" or its group '{group.label}'" if group is not None else "")

    def _new_country(self, facts, call) -> bool:
        own, group = self._known_countries(facts, call)
        country = facts["country"]
        return not ((own is not None and country in own.countries)
                    or (group is not None and country in group.countries))

    def _judge(self, totals, facts, reference, call) -> list:
        found = []
        company = self.profiles.company
        currency = f" {totals.currency}" if totals.currency else ""
        checks = (
            ("calls_day", "calls", totals.calls, reference.calls_day,
             DAY_FACTOR * company.calls_day.median, lambda v: f"{v:.0f}"),
            ("cost_day", "cost", totals.cost, reference.cost,
             DAY_FACTOR * company.cost.median, lambda v: money(v) + currency),
            ("intl_minutes_day", "international minutes", totals.intl_seconds / 60,
             reference.intl_minutes, INTL_MINUTES_DAY_MIN, lambda v: f"{v:.0f}"),
        )
        for reason, what, value, stat, floor, shown in checks:
            threshold = stat.threshold(floor)
            if value > threshold and value > 0:
                ratio = (f"{value / stat.base:.0f}× {reference.base_label()} ({shown(stat.base)})"
                         if stat.base > 0 else f"where {reference.base_label()} is 0")
                found.append(Finding(reason, _level(value, threshold),
                                     f"{what} today {shown(value)}, {ratio}; alerts above "
                                     f"{shown(threshold)}"))
        if totals.odd_calls >= ODD_HOURS_CALLS:
            days = "weekdays" if facts["day_type"] == WEEKDAY else "weekends and holidays"
            span = (f"at {totals.odd_first:%H:%M}" if totals.odd_calls == 1 else
                    f"between {totals.odd_first:%H:%M} and {totals.odd_last:%H:%M}")
            found.append(Finding(
                "odd_hours", _level(totals.odd_calls, ODD_HOURS_CALLS),
                f"{totals.odd_calls} international calls today {span}, hours at which "
                f"{reference.who()} does not call on {days} (last {LEARN_DAYS} days)"))
        country = facts["country"]
        if facts["high_risk"] and totals.new_countries.get(country):
            whose = self._whose(facts, call)
            nobody = country not in company.countries
            level = "critical" if nobody or totals.new_high_risk >= CRITICAL_MULTIPLE \
                else "warning"
            found.append(Finding(
                "new_high_risk", level,
                f"first call to {destination(country)}, a high-risk destination, from "
                f"{whose} in the last {LEARN_DAYS} days"
                + ("; nobody in the company called it either" if nobody else "")))
        if len(totals.new_countries) >= NEW_COUNTRIES_PER_DAY:
            listed = ", ".join(destination(code) for code in totals.new_countries)
            found.append(Finding(
                "new_countries", _level(len(totals.new_countries), NEW_COUNTRIES_PER_DAY),
                f"calls today to {len(totals.new_countries)} countries not called by "
                f"{self._whose(facts, call)} in the last {LEARN_DAYS} days: {listed}"))
        if facts["international"]:
            threshold = max(LONG_CALL_FACTOR * reference.p99_seconds, LONG_CALL_MIN_S)
            if facts["seconds"] > threshold:
                where = f" to {destination(country)}" if country else ""
                found.append(Finding(
                    "long_call", _level(facts["seconds"], threshold),
                    f"an international call of {minutes(facts['seconds'])}{where}, longer "
                    f"than {LONG_CALL_FACTOR}× the 99th percentile of the calls of "
                    f"{reference.who()} ({minutes(reference.p99_seconds)}); alerts above "
                    f"{minutes(threshold)}"))
        return found

    # -- a number unknown to the system ---------------------------------------------------

    def _suspect_unknown(self, facts) -> bool:
        """International, high-risk, or costing more than the company's median
        subscriber-day (when calls are rated)."""
        usual_day = self.profiles.company.cost.median
        return (facts["international"] or facts["high_risk"]
                or (usual_day > 0 and facts["cost"] > usual_day))

    def _count_unknown(self, totals, facts) -> None:
        totals.calls += 1
        totals.cost += facts["cost"]
        if self._suspect_unknown(facts):
            totals.unknown_calls += 1
            if facts["high_risk"]:
                totals.new_high_risk += 1

    def _judge_unknown(self, totals, facts, call) -> list:
        if not self._suspect_unknown(facts) or totals.unknown_calls == 0:
            return []
        currency = f" {call.get('currency')}" if call.get("currency") else ""
        level = "critical" if (totals.new_high_risk
                               or totals.unknown_calls >= CRITICAL_MULTIPLE) else "warning"
        last = f", the last to {destination(facts['country'])}" if facts["country"] else ""
        return [Finding(
            "unknown_number", level,
            f"calls from {facts['number'] or 'an empty number'}, a number unknown to the "
            f"system (no subscriber, no outgoing call in the last {LEARN_DAYS} days): "
            f"{totals.unknown_calls} international or expensive call(s) today costing "
            f"{money(totals.cost)}{currency}{last}")]

    @staticmethod
    def _new(totals, found) -> list:
        """The findings not alerted yet today: each reason once, and once more when it
        turns critical."""
        new = []
        for finding in found:
            before = totals.alerted.get(finding.reason)
            if before is None or (before == "warning" and finding.level == "critical"):
                totals.alerted[finding.reason] = finding.level
                new.append(finding)
        return new


# -- the script --------------------------------------------------------------------------


class BehaviourFraudScanner:
    """Bound to "periodic" (builds the profiles) and "call_processed" (judges a call)."""

    def init(self, host):
        self.host = host
        self.model = Model()
        self.ready = False  # the first build (and the count of today's calls) is done
        self.phase = None  # a build under way: "learn", then (the first one) "today"
        self.builder = None
        self.now = None  # the UTC time the build under way started
        self.after_id = 0
        self.build_started = None  # time.monotonic() of the last build's start
        self.build_seconds = 0.0
        self.pages = 0
        self.pending = []  # calls that came before the first build was done
        self.seeded = set()  # ids of today's calls a fresh process counted into the totals
        self.flagged = {}  # (key, day) -> True: a critical day, not learnt from
        self.said_no_company = False

    def main(self, params):
        try:
            event = params.get("event")
            if event == "periodic":
                self._periodic()
            elif event == "call_processed":
                self._call_processed(params.get("id"))
        except Exception:
            self.host.log("Error running script: " + traceback.format_exc())

    # -- the events -----------------------------------------------------------------------

    def _periodic(self) -> None:
        due = self.build_started is None or \
            time.monotonic() - self.build_started >= REBUILD_EVERY_S
        if self.phase is not None or due:
            self._build()

    def _call_processed(self, call_id) -> None:
        call = self.host.call(call_id)
        if call is None:
            self.host.log(f"call {call_id} is not in v_calls")
            return
        if not self.ready:
            if len(self.pending) < MAX_PENDING:
                self.pending.append(call)
            elif len(self.pending) == MAX_PENDING:
                self.pending.append(None)
                self.host.log(f"{MAX_PENDING} calls wait for the first build of the "
                              "profiles: the next ones are not judged")
            self._build()
            return
        self._judge(call)

    def _judge(self, call) -> None:
        counted = call.get("id") in self.seeded
        findings, notes = self.model.score(call, counted=counted)
        for note in notes:
            self.host.log(note)
        if self.model.profiles.company.active_days < MIN_ACTIVE_DAYS and \
                not self.said_no_company:
            self.said_no_company = True
            self.host.log(f"the company has {self.model.profiles.company.active_days} days "
                          f"with calls in the last {LEARN_DAYS}, fewer than "
                          f"{MIN_ACTIVE_DAYS}: calls are not judged yet")
        if findings:
            self._report(call, findings)

    # -- the profiles ---------------------------------------------------------------------

    def _build(self) -> None:
        """Go on with the build (or start one): page through v_calls for BUILD_BUDGET_S at
        most. A fresh process then reads today's calls again, to count them into the day
        totals, and judges the calls that waited."""
        started = time.monotonic()
        if self.phase is None:
            self.now = utc_now()
            self.builder = ProfileBuilder(self.now, exclude=self._flagged_days(self.now),
                                          holidays=self._holidays_of(self.now))
            self.phase, self.after_id, self.pages, self.build_seconds = "learn", 0, 0, 0.0
            self.build_started = started
        while True:
            days = LEARN_DAYS + 2 if self.phase == "learn" else 1  # any zone's today
            since = (self.now - datetime.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
            rows = self.host.query(HISTORY_QUERY, [since, self.after_id])
            self.pages += 1
            if self.phase == "learn":
                self.builder.add(rows)
            else:
                self._count_today(rows)
            if rows:
                self.after_id = max(int(row["id"]) for row in rows)
            if len(rows) < PAGE_ROWS:
                self.build_seconds += time.monotonic() - started
                if self.phase == "learn":
                    self._learnt()
                else:
                    self._counted()
                if self.phase is None:
                    return
            elif time.monotonic() - started >= BUILD_BUDGET_S or self.host.closing:
                self.build_seconds += time.monotonic() - started
                self.host.log(f"building the profiles: {self.pages} queries so far, going "
                              "on at the next event")
                return

    def _learnt(self) -> None:
        builder, self.builder = self.builder, None
        profiles = builder.finish()
        self.model.profiles = profiles
        judged = sum(1 for p in profiles.subscribers.values()
                     if p.active_days >= MIN_ACTIVE_DAYS)
        span = (f"{profiles.first_day}..{profiles.last_day}" if profiles.first_day
                else "none")
        self.host.log(
            f"profiles built from {profiles.calls:,} outgoing calls of the last "
            f"{LEARN_DAYS} days ({span}): {len(profiles.subscribers)} subscribers "
            f"({judged} with {MIN_ACTIVE_DAYS}+ days of calls), {len(profiles.groups)} "
            f"groups, {len(profiles.numbers)} numbers without a subscriber; "
            f"{self.pages} queries, {self.build_seconds:.1f} s")
        self.seeded = set()
        self.phase, self.after_id = (None, 0) if self.ready else ("today", 0)

    def _count_today(self, rows) -> None:
        for row in rows:
            if len(self.seeded) >= MAX_SEEDED:
                return
            if as_datetime(row["calldatetime"]).date() >= local_today(row, self.now):
                self.model.count(row)
                self.seeded.add(row.get("id"))

    def _counted(self) -> None:
        self.phase, self.ready = None, True
        if self.seeded:
            self.host.log(f"{len(self.seeded):,} calls of today counted into the day totals")
        pending, self.pending = self.pending, []
        for call in pending:
            if call is not None:
                self._judge(call)

    def _holidays_of(self, now):
        """device id -> its public holidays around `now` (host.holidays), for the kind of
        day; an error (or a host without it) is logged once per build: working days."""
        lookup = getattr(self.host, "holidays", None)
        years = sorted({(now - datetime.timedelta(days=LEARN_DAYS + 2)).year, now.year,
                        (now + datetime.timedelta(days=2)).year})
        failed = []

        def holidays(device_id):
            if lookup is None or failed:
                return ()
            days = set()
            try:
                for year in years:
                    days.update(day if isinstance(day, datetime.date)
                                else datetime.date.fromisoformat(str(day)[:10])
                                for day in lookup(year, device_id) or ())
            except Exception as exc:
                failed.append(exc)
                self.host.log(f"holidays not known ({exc}): they count as working days")
                return ()
            return days
        return holidays

    def _flagged_days(self, now) -> frozenset:
        oldest = (now - datetime.timedelta(days=LEARN_DAYS + 2)).date()
        for pair in [pair for pair in self.flagged if pair[1] < oldest]:
            del self.flagged[pair]
        return frozenset(self.flagged)

    # -- alerts ---------------------------------------------------------------------------

    def _report(self, call, findings) -> None:
        subscriber_id = call.get("subscriber_id")
        call_id = call.get("id")
        for finding in findings:
            self.host.alert(finding.level, finding.text, call_id=call_id,
                            subscriber_id=subscriber_id)
        if any(finding.level == "critical" for finding in findings):
            key = ("s", subscriber_id) if subscriber_id is not None else (
                "o", str(call.get("originator") or ""))
            day = as_datetime(call["calldatetime"]).date()
            if len(self.flagged) < MAX_FLAGGED:
                self.flagged[(key, day)] = True
            if CLOSE_ON_CRITICAL:
                self._close(call, key, day, findings)
        start = as_datetime(call["calldatetime"])
        who = call.get("subscriber") or "none"
        if call.get("group"):
            who += f", {call['group']}"
        lines = [f"Unusual behaviour: {len(findings)} alert(s). ID={call_id} "
                 f"CallDateTime={start.isoformat(sep=' ')} "
                 f"Call duration={int(call.get('callseconds') or 0)} "
                 f"Originator={call.get('originator') or ''} "
                 f"Dialnumber={call.get('dialnumber') or ''} Subscriber={who}"]
        lines += [f"[{finding.level}] {finding.text}" for finding in findings]
        try:
            self.host.send_mail(MAIL_TO, SUBJECT, "\n".join(lines))
        except Exception as exc:
            self.host.log(f"mail not sent: {exc}")

    def _close(self, call, key, day, findings) -> None:
        totals = self.model.totals.get((key, day))
        subscriber_id = call.get("subscriber_id")
        if subscriber_id is None:
            self.host.log(f"number {key[1]} not closed: it belongs to no subscriber")
            return
        if totals is not None and totals.closed:
            return
        if totals is not None:
            totals.closed = True
        reason = "; ".join(f.text for f in findings if f.level == "critical")
        try:
            self.host.close_subscriber(subscriber_id, reason)
            self.host.log(f"subscriber {subscriber_id} closed: {reason}")
        except Exception as exc:
            self.host.log(f"subscriber {subscriber_id} not closed: {exc}")
