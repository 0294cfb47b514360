"""The demo site of `manage.py seed_demo`: a Kyiv office with a 3CX, a carrier's rate deck,
thirty employees and a month of 3CX CDR files for its folder observer to collect.

Layout (a deliberate exception to STYLE's "pure modules have no django.db"): everything
above `demo_site_create` is plain computation on plain values - the rate deck, the
staff list, the demo period and the CDR lines - and never touches the database;
`demo_site_create` at the bottom is the one service that writes the rows. They live in
one module because nothing else uses either half.

Everything is deterministic for a given seed: each day's calls come from a random
generator seeded with (seed, day), so the same day always gives the same file, whatever
period it is generated in, and re-collecting it stores nothing twice.
"""
import csv
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from django.db import transaction

from billing.models import (
    Device,
    DeviceType,
    Node,
    PhoneNumber,
    Route,
    Subscriber,
    SubscriberGroup,
)
from observers.models import ObserverProfile, SourceType
from observers.parsers.threecx import FIELDS_V18
from tariffs.choices import CallType
from tariffs.models import Operator, PhoneCode, Tariff, TariffPlan, TariffPrice
from tariffs.services import operator_rates_changed

DATA_DIR = Path(__file__).resolve().parent / "data"

NODE_NAME = "Kyiv"
DEVICE_NAME = "PBX1"
PROFILE_NAME = "PBX1"
OPERATOR_NAME = "Kyivstar Business"
PLAN_NAME = "Basic"
TRUNK_DN = "10000"  # 3CX names its SIP trunk (a "line") by a DN
COMPANY_DID = "+380442900100"  # the office's published number, dialled by incoming callers
ACCESS_CODE = "9"
UNASSIGNED_DN = "150"  # the meeting-room phone: on the PBX, held by no subscriber (R6.3)
UNASSIGNED_NAME = "Meeting room"
MALFORMED_LINES = 2  # deliberately broken lines per generated period, for the rejects list

LOCAL, LONG_DISTANCE, MOBILE, INTERNATIONAL = (
    "Local calls", "Long-distance calls", "Mobile calls", "International calls")


# --- The rate deck --------------------------------------------------------------------

@dataclass(frozen=True)
class DeckTariff:
    """One priced destination class; several codes share it."""

    name: str
    call_type: int
    account_description: str
    price: Decimal  # UAH per minute in the demo plan
    first_interval: int = 60
    next_interval: int = 60


@dataclass(frozen=True)
class DeckCode:
    code: str  # international form, country code first
    name: str
    tariff: str
    call_type: int


# Ukrainian geographic codes after 380 (the national 0 dropped). A region's two-digit code
# and the longer codes of its cities share the long-distance tariff; the names are what
# the calls page shows.
UA_AREAS = (
    ("31", "Zakarpattia region"), ("312", "Uzhhorod"), ("3131", "Mukachevo"),
    ("32", "Lviv"), ("3244", "Drohobych"),
    ("33", "Volyn region"), ("332", "Lutsk"), ("3352", "Kovel"),
    ("34", "Ivano-Frankivsk region"), ("342", "Ivano-Frankivsk"),
    ("35", "Ternopil region"), ("352", "Ternopil"),
    ("36", "Rivne region"), ("362", "Rivne"),
    ("37", "Chernivtsi region"), ("372", "Chernivtsi"),
    ("38", "Khmelnytskyi region"), ("382", "Khmelnytskyi"), ("3849", "Kamianets-Podilskyi"),
    ("41", "Zhytomyr region"), ("412", "Zhytomyr"),
    ("43", "Vinnytsia region"), ("432", "Vinnytsia"),
    ("45", "Kyiv region"), ("4563", "Bila Tserkva"), ("4594", "Brovary"),
    ("4595", "Boryspil"), ("4597", "Irpin"),
    ("46", "Chernihiv region"), ("462", "Chernihiv"),
    ("47", "Cherkasy region"), ("472", "Cherkasy"),
    ("48", "Odesa"),
    ("51", "Mykolaiv region"), ("512", "Mykolaiv"),
    ("52", "Kirovohrad region"), ("522", "Kropyvnytskyi"),
    ("53", "Poltava region"), ("532", "Poltava"), ("536", "Kremenchuk"),
    ("54", "Sumy region"), ("542", "Sumy"),
    ("55", "Kherson region"), ("552", "Kherson"),
    ("56", "Dnipro"), ("564", "Kryvyi Rih"),
    ("57", "Kharkiv"),
    ("61", "Zaporizhzhia"),
    ("62", "Donetsk region"), ("6262", "Sloviansk"), ("6264", "Kramatorsk"),
    ("64", "Luhansk region"),
    ("65", "Crimea"), ("652", "Simferopol"), ("692", "Sevastopol"),
)
# Mobile network codes after 380. The operator's own network is priced lower (on-net).
UA_MOBILE_ON_NET = (("67", "Kyivstar"), ("68", "Kyivstar"), ("96", "Kyivstar"),
                    ("97", "Kyivstar"), ("98", "Kyivstar"), ("39", "Kyivstar"))
UA_MOBILE_OFF_NET = (("50", "Vodafone Ukraine"), ("66", "Vodafone Ukraine"),
                     ("95", "Vodafone Ukraine"), ("99", "Vodafone Ukraine"),
                     ("63", "lifecell"), ("73", "lifecell"), ("93", "lifecell"),
                     ("91", "3Mob"), ("92", "PEOPLEnet"), ("94", "Intertelecom"))

# Countries priced on their own: (tariff name, calling code, fixed-line price,
# mobile prefixes after the calling code, mobile price). The rest go by world region.
COUNTRIES = (
    ("Poland", "48", "3.60", ("45", "50", "51", "53", "57", "60", "66", "69", "72", "73",
                              "78", "79", "88"), "4.80"),
    ("Germany", "49", "3.90", ("151", "152", "155", "157", "159", "160", "162", "163",
                               "170", "171", "172", "173", "174", "175", "176", "177",
                               "178", "179"), "7.20"),
    ("United Kingdom", "44", "3.60", ("71", "72", "73", "74", "75", "77", "78", "79"), "6.60"),
    ("Czechia", "420", "4.20", ("60", "72", "73", "77", "79"), "6.90"),
    ("Moldova", "373", "6.90", ("6", "7"), "8.40"),
    ("Romania", "40", "4.50", ("7",), "6.00"),
    ("Lithuania", "370", "4.80", ("6",), "7.20"),
    ("Italy", "39", "4.20", ("3",), "7.20"),
    ("France", "33", "4.20", ("6", "7"), "7.20"),
    ("Spain", "34", "4.20", ("6", "7"), "6.60"),
    ("Netherlands", "31", "4.20", ("6",), "7.50"),
    ("Austria", "43", "4.50", ("6",), "7.80"),
    ("Israel", "972", "5.40", ("5",), "6.90"),
    ("Türkiye", "90", "6.00", ("5",), "8.40"),
    ("Georgia", "995", "7.80", ("5",), "9.00"),
)
REGION_PRICES = {"Europe": "7.80", "Asia": "12.00", "Americas": "10.80", "Africa": "16.80",
                 "Oceania": "18.00"}
# Codes the country list leaves out: Kazakhstan shares 7 with Russia, and calls to Russia
# do not go through Ukrainian carriers; the satellite and global networks have no country.
EXTRA_CODES = (("76", "Kazakhstan", "Asia"), ("77", "Kazakhstan", "Asia"))
SATELLITE = (("870", "Inmarsat"), ("8816", "Iridium"), ("8817", "Iridium"),
             ("8818", "Globalstar"), ("8819", "Globalstar"),
             ("882", "International Networks"), ("883", "International Networks"))


def _countries() -> list[tuple[str, str, str]]:
    """(calling code, country, world region) from the public-domain country list."""
    with open(DATA_DIR / "country_calling_codes.csv", encoding="utf-8", newline="") as handle:
        return [(row["dial"], row["name"], row["region"]) for row in csv.DictReader(handle)]


def demo_deck() -> tuple[list[DeckTariff], list[DeckCode]]:
    """R4.1-R4.3: the demo carrier's tariffs and codes, in international form."""
    tariffs = [
        DeckTariff("Kyiv", CallType.LOCAL, LOCAL, Decimal("0.60")),
        DeckTariff("Ukraine long-distance", CallType.LONG_DISTANCE, LONG_DISTANCE,
                   Decimal("0.90")),
        # On-net mobile is billed by the second, as carriers sell it to businesses.
        DeckTariff("Kyivstar mobile", CallType.MOBILE, MOBILE, Decimal("0.45"), 1, 1),
        DeckTariff("Ukraine mobile", CallType.MOBILE, MOBILE, Decimal("1.50")),
        DeckTariff("USA and Canada", CallType.INTERNATIONAL, INTERNATIONAL, Decimal("2.40"),
                   1, 1),
        DeckTariff("Satellite networks", CallType.INTERNATIONAL, INTERNATIONAL,
                   Decimal("240.00")),
    ]
    codes = [
        DeckCode("38044", "Kyiv", "Kyiv", CallType.LOCAL),
        # Any other Ukrainian number (non-geographic, new ranges) is priced as long-distance.
        DeckCode("380", "Ukraine, other numbers", "Ukraine long-distance",
                 CallType.LONG_DISTANCE),
    ]
    codes += [DeckCode("380" + area, name, "Ukraine long-distance", CallType.LONG_DISTANCE)
              for area, name in UA_AREAS]
    codes += [DeckCode("380" + ndc, f"{network} mobile", "Kyivstar mobile", CallType.MOBILE)
              for ndc, network in UA_MOBILE_ON_NET]
    codes += [DeckCode("380" + ndc, f"{network} mobile", "Ukraine mobile", CallType.MOBILE)
              for ndc, network in UA_MOBILE_OFF_NET]
    codes.append(DeckCode("1", "USA and Canada", "USA and Canada", CallType.INTERNATIONAL))
    # Codes priced by a tariff of their own; a country sharing one (Pitcairn is reached
    # through Inmarsat's 870) is left to that tariff.
    own = {"1", *(code for code, _ in SATELLITE)}
    for name, cc, fixed, mobile_prefixes, mobile in COUNTRIES:
        own.add(cc)
        tariffs.append(DeckTariff(name, CallType.INTERNATIONAL, INTERNATIONAL, Decimal(fixed)))
        tariffs.append(DeckTariff(f"{name} mobile", CallType.INTERNATIONAL, INTERNATIONAL,
                                  Decimal(mobile)))
        codes.append(DeckCode(cc, name, name, CallType.INTERNATIONAL))
        codes += [DeckCode(cc + p, f"{name} mobile", f"{name} mobile", CallType.INTERNATIONAL)
                  for p in mobile_prefixes]
    for region, price in REGION_PRICES.items():
        tariffs.append(DeckTariff(region, CallType.INTERNATIONAL, INTERNATIONAL, Decimal(price)))
    for cc, country, region in [*_countries(), *EXTRA_CODES]:
        if cc not in own:
            codes.append(DeckCode(cc, country, region, CallType.INTERNATIONAL))
    codes += [DeckCode(code, name, "Satellite networks", CallType.INTERNATIONAL)
              for code, name in SATELLITE]
    return tariffs, codes


# --- The office -----------------------------------------------------------------------

# (group, parent group); the node is the root of the tree.
GROUPS = (("Management", None), ("Sales", None), ("Sales East", "Sales"),
          ("Support", None), ("Accounting", None))
# Employees in extension order: the first holds 201, the last 230 (clear of the emergency
# and service numbers 101-104 and 112, which the device keeps as service numbers).
STAFF = (
    ("Oleksandr Kovalenko", "Management"), ("Iryna Bondarenko", "Management"),
    ("Viktor Hrytsenko", "Management"),
    ("Andrii Shevchenko", "Sales"), ("Olena Tkachenko", "Sales"),
    ("Dmytro Kravchenko", "Sales"), ("Nataliia Melnyk", "Sales"), ("Serhii Boiko", "Sales"),
    ("Tetiana Kovalchuk", "Sales"), ("Maksym Oliinyk", "Sales"),
    ("Yurii Lysenko", "Sales East"), ("Oksana Marchenko", "Sales East"),
    ("Vitalii Rudenko", "Sales East"), ("Kateryna Savchenko", "Sales East"),
    ("Artem Pshenychnyi", "Sales East"),
    ("Bohdan Petrenko", "Support"), ("Yuliia Moroz", "Support"),
    ("Taras Pavlenko", "Support"), ("Svitlana Kozak", "Support"),
    ("Roman Ponomarenko", "Support"), ("Halyna Kharchenko", "Support"),
    ("Volodymyr Symonenko", "Support"), ("Mariia Zinchenko", "Support"),
    ("Ihor Levchenko", "Support"),
    ("Liudmyla Hnatiuk", "Accounting"), ("Nadiia Klymenko", "Accounting"),
    ("Petro Vasylenko", "Accounting"), ("Larysa Yakovenko", "Accounting"),
    ("Mykola Fedorenko", "Accounting"), ("Anastasiia Karpenko", "Accounting"),
)
FIRST_EXTENSION = 201
# R6.3: Maksym Oliinyk (210) leaves mid-month and the head of sales takes over his line.
REASSIGNED_DN = "210"
REASSIGNED_TO = "Andrii Shevchenko"
# How busy each department's telephones are, relative to one another.
GROUP_ACTIVITY = {"Management": 0.8, "Sales": 1.6, "Sales East": 1.4, "Support": 1.2,
                  "Accounting": 0.6}


def staff_extension(index: int) -> str:
    return str(FIRST_EXTENSION + index)


@dataclass(frozen=True)
class Period:
    """The demo's days, both ends included, and the day the reassigned number changes hands."""

    first: date
    last: date

    @property
    def reassigned_on(self) -> date:
        """The middle of the last month, and never the first day (the old holder needs one)."""
        month_start = max(self.first, self.last.replace(day=1))
        return max(self.first + timedelta(days=1),
                   month_start + timedelta(days=((self.last - month_start).days + 1) // 2))

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def demo_period(*, today: date, months: int = 1, days: int | None = None) -> Period:
    """The previous `months` full calendar months, or the `days` days before today."""
    if days is not None:
        if days < 1:
            raise ValueError("days must be at least 1")
        return Period(today - timedelta(days=days), today - timedelta(days=1))
    if months < 1:
        raise ValueError("months must be at least 1")
    this_month = today.replace(day=1)
    year, month = divmod(this_month.year * 12 + this_month.month - 1 - months, 12)
    return Period(date(year, month + 1, 1), this_month - timedelta(days=1))


@dataclass(frozen=True)
class Line:
    """An extension as the CDR shows it on one day."""

    dn: str
    name: str  # the display name 3CX writes
    activity: float


def roster_on(day: date, period: Period) -> list[Line]:
    """The office's extensions on `day`, with the names 3CX shows for them."""
    lines = []
    for index, (name, group) in enumerate(STAFF):
        dn = staff_extension(index)
        if dn == REASSIGNED_DN and day >= period.reassigned_on:
            name = REASSIGNED_TO
        lines.append(Line(dn, name, GROUP_ACTIVITY[group]))
    return lines


# --- Numbers that get called ----------------------------------------------------------

def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _subscriber_part(rng: random.Random, count: int) -> str:
    """A subscriber number: never starting with 0 or 1 (those are prefixes)."""
    return rng.choice("23456789") + _digits(rng, count - 1)


# Long-distance destinations by weight: the big cities first. (code after 380)
_LD_WEIGHTS = {"32": 10, "48": 10, "57": 9, "56": 9, "61": 5, "312": 2, "332": 2, "342": 2,
               "352": 2, "362": 2, "372": 2, "382": 2, "412": 2, "432": 3, "462": 2, "472": 2,
               "512": 2, "522": 1, "532": 2, "536": 1, "542": 2, "552": 1, "564": 2,
               "4563": 2, "4594": 2, "4595": 2, "4597": 2, "3131": 1, "3244": 1, "6264": 1}
# Mobile networks by rough market share (code after 380).
_MOBILE_WEIGHTS = {"67": 20, "68": 8, "96": 8, "97": 10, "98": 6, "39": 1, "50": 14, "66": 6,
                   "95": 7, "99": 5, "63": 5, "73": 3, "93": 6, "91": 1}
# International destinations: (weight, calling code, national number length, prefixes of
# the national number - cities and mobile ranges - that calls start with).
_ABROAD = (
    (25, "48", 9, ("22", "12", "71", "501", "512", "531", "571", "601", "662", "691", "721",
                   "781", "791", "881")),
    (14, "49", 10, ("30", "40", "89", "69", "151", "152", "160", "170", "172", "176")),
    (8, "44", 10, ("20", "161", "131", "7700", "7400", "7500", "7800", "7900")),
    (8, "1", 10, ("212", "646", "415", "312", "305", "416", "604")),
    (6, "420", 9, ("2", "601", "602", "720", "732", "777")),
    (5, "373", 8, ("22", "68", "69", "78", "79")),
    (4, "39", 10, ("06", "02", "320", "333", "347", "380")),
    (3, "40", 9, ("21", "72", "74", "75")),
    (3, "370", 8, ("5", "6")),
    (3, "34", 9, ("91", "93", "6", "7")),
    (3, "33", 9, ("1", "6", "7")),
    (3, "972", 9, ("3", "50", "52", "54")),
    (3, "90", 10, ("212", "532", "542", "505")),
    (2, "995", 9, ("32", "5")),
    (2, "31", 9, ("20", "6")),
    (2, "43", 10, ("1", "66", "67", "69")),
    (2, "351", 9, ("21", "91", "93")),
    (1, "46", 9, ("8", "70", "73")),
    (1, "45", 8, ("3", "2")),
    (1, "41", 9, ("44", "79")),
    (1, "7", 10, ("701", "707", "727")),
    (1, "86", 11, ("10", "139")),
    (1, "971", 9, ("4", "50")),
    (1, "20", 10, ("2", "10")),
)


def _local_number(rng) -> str:
    return _subscriber_part(rng, 7)


def _national_number(rng, area: str) -> str:
    return area + _subscriber_part(rng, 9 - len(area))


def _long_distance_number(rng) -> str:
    area = rng.choices(list(_LD_WEIGHTS), weights=list(_LD_WEIGHTS.values()))[0]
    return _national_number(rng, area)


def _mobile_number(rng) -> str:
    ndc = rng.choices(list(_MOBILE_WEIGHTS), weights=list(_MOBILE_WEIGHTS.values()))[0]
    return ndc + _digits(rng, 7)


def _international_number(rng) -> str:
    _, cc, length, prefixes = rng.choices(_ABROAD, weights=[d[0] for d in _ABROAD])[0]
    prefix = rng.choice(prefixes)
    return cc + prefix + _digits(rng, length - len(prefix))


# Outgoing calls by kind: (weight, number maker, how users dial it with access code 9).
_DIALLED = {
    CallType.LOCAL: (33, _local_number, lambda n: ACCESS_CODE + n),
    CallType.LONG_DISTANCE: (17, _long_distance_number, lambda n: ACCESS_CODE + "0" + n),
    CallType.MOBILE: (40, _mobile_number, lambda n: ACCESS_CODE + "0" + n),
    CallType.INTERNATIONAL: (10, _international_number, lambda n: ACCESS_CODE + "00" + n),
}
# Incoming calls by the caller's kind, and how the carrier presents the caller's number.
_CALLERS = {
    CallType.LOCAL: (30, lambda rng: "044" + _local_number(rng)),
    CallType.LONG_DISTANCE: (15, lambda rng: "0" + _long_distance_number(rng)),
    CallType.MOBILE: (50, lambda rng: "0" + _mobile_number(rng)),
    CallType.INTERNATIONAL: (5, lambda rng: "+" + _international_number(rng)),
}


class Contacts:
    """People the office talks to again and again, with a few very frequent ones, so that
    "top destinations" reports have something to rank. Fixed for a seed."""

    def __init__(self, seed: int):
        rng = random.Random(f"tariscope-demo:{seed}:contacts")
        self.dialled = {kind: [make(rng) for _ in range(size)] for kind, size, make in (
            (CallType.LOCAL, 120, _local_number),
            (CallType.LONG_DISTANCE, 60, _long_distance_number),
            (CallType.MOBILE, 200, _mobile_number),
            (CallType.INTERNATIONAL, 40, _international_number),
        )}
        self.callers = {kind: [make(rng) for _ in range(size)] for kind, size, make in (
            (CallType.LOCAL, 80, _CALLERS[CallType.LOCAL][1]),
            (CallType.LONG_DISTANCE, 50, _CALLERS[CallType.LONG_DISTANCE][1]),
            (CallType.MOBILE, 200, _CALLERS[CallType.MOBILE][1]),
            (CallType.INTERNATIONAL, 20, _CALLERS[CallType.INTERNATIONAL][1]),
        )}

    @staticmethod
    def pick(rng: random.Random, pool: list[str], fresh) -> str:
        """Mostly a known contact (Zipf-like: the first few very often), sometimes new."""
        if rng.random() < 0.3:
            return fresh(rng)
        return rng.choices(pool, cum_weights=_zipf_cum(len(pool)))[0]


_ZIPF: dict[int, list[float]] = {}


def _zipf_cum(size: int) -> list[float]:
    if size not in _ZIPF:
        total, cum = 0.0, []
        for rank in range(1, size + 1):
            total += 1 / rank ** 0.7
            cum.append(total)
        _ZIPF[size] = cum
    return _ZIPF[size]


# --- CDR lines ------------------------------------------------------------------------

_TIME = "%Y/%m/%d %H:%M:%S"
# Calls per hour of a working day, relative: the morning peak, lunch, the afternoon.
_HOURS = {7: 1, 8: 4, 9: 9, 10: 12, 11: 12, 12: 9, 13: 5, 14: 10, 15: 11, 16: 10, 17: 7,
          18: 3, 19: 1.5, 20: 0.5}


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _talk_seconds(rng: random.Random, median: float) -> int:
    """Most calls last half a minute to five minutes; a few go on for most of an hour."""
    if rng.random() < 0.03:
        return rng.randint(900, 3600)
    return max(4, min(5400, round(rng.lognormvariate(math.log(median), 0.85))))


@dataclass(frozen=True)
class DemoCall:
    """One generated call before it is written as a CDR line."""

    kind: str  # "outgoing", "incoming" or "internal"
    call_type: int  # the type the pipeline should find (for the summary and the tests)
    start: datetime  # naive, the device's local time, as 3CX writes it
    ring: int  # seconds until answered (or until given up)
    talk: int  # seconds; 0 = not answered
    extension: Line
    other: str  # dialled digits (outgoing, internal) or the caller's number (incoming)
    other_name: str = ""


def _cdr_fields(call: DemoCall, historyid: int, callid: str) -> dict[str, str]:
    """The 3CX v18 default field set for one call (see observers/parsers/threecx.py)."""
    answered = call.start + timedelta(seconds=call.ring) if call.talk else None
    end = call.start + timedelta(seconds=call.ring + call.talk)
    f = dict.fromkeys(FIELDS_V18, "")
    f.update({
        "historyid": f"Call {historyid}", "callid": callid, "duration": _hms(call.talk),
        "time-start": call.start.strftime(_TIME),
        "time-answered": answered.strftime(_TIME) if answered else "",
        "time-end": end.strftime(_TIME),
    })
    ext = call.extension
    if call.kind == "outgoing":
        # The outbound rule strips the access code before the number goes to the trunk.
        sent = call.other.removeprefix(ACCESS_CODE)
        f.update({
            "reason-terminated": ("TerminatedBySrc" if call.talk or call.ring > 30
                                  else "Failed_Cancelled"),
            "from-no": f"Ext.{ext.dn}", "to-no": sent, "from-dn": ext.dn, "to-dn": TRUNK_DN,
            "dial-no": call.other, "final-number": sent, "final-dn": TRUNK_DN,
            "chain": f"Chain: Ext.{ext.dn};{sent};", "from-type": "Extension",
            "to-type": "Line", "final-type": "Line", "from-dispname": ext.name,
            "to-dispname": sent, "final-dispname": sent,
        })
    elif call.kind == "incoming":
        f.update({
            "reason-terminated": "TerminatedByDst" if call.talk else "TerminatedBySrc",
            "from-no": call.other, "to-no": f"Ext.{ext.dn}", "from-dn": TRUNK_DN,
            "to-dn": ext.dn, "dial-no": COMPANY_DID, "final-number": f"Ext.{ext.dn}",
            "final-dn": ext.dn, "chain": f"Chain: {call.other};Ext.{ext.dn};",
            "from-type": "Line", "to-type": "Extension", "final-type": "Extension",
            "from-dispname": call.other, "to-dispname": ext.name, "final-dispname": ext.name,
        })
    else:
        f.update({
            "reason-terminated": "TerminatedBySrc",
            "from-no": f"Ext.{ext.dn}", "to-no": f"Ext.{call.other}", "from-dn": ext.dn,
            "to-dn": call.other, "dial-no": call.other, "final-number": f"Ext.{call.other}",
            "final-dn": call.other, "chain": f"Chain: Ext.{ext.dn};Ext.{call.other};",
            "from-type": "Extension", "to-type": "Extension", "final-type": "Extension",
            "from-dispname": ext.name, "to-dispname": call.other_name,
            "final-dispname": call.other_name,
        })
    return f


def _line(fields: dict[str, str]) -> str:
    # Names and numbers hold no commas or quotes, so 3CX would write the fields unquoted.
    assert not any("," in v or '"' in v for v in fields.values()), fields
    return ",".join(fields[name] for name in FIELDS_V18)


def demo_calls(day: date, *, seed: int, period: Period, contacts: Contacts) -> list[DemoCall]:
    """The calls of one day, in the order they started."""
    rng = random.Random(f"tariscope-demo:{seed}:{day.isoformat()}")
    roster = roster_on(day, period)
    weekday = day.weekday() < 5
    count = rng.randint(170, 230) if weekday else rng.randint(3, 12)
    hours = list(_HOURS) if weekday else list(range(10, 18))
    hour_weights = list(_HOURS.values()) if weekday else None
    activity = [line.activity for line in roster]
    meeting_room = Line(UNASSIGNED_DN, UNASSIGNED_NAME, 0)
    calls = []
    for _ in range(count):
        hour = rng.choices(hours, weights=hour_weights)[0]
        start = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)))
        ext = rng.choices(roster, weights=activity)[0]
        kind = rng.choices(("outgoing", "incoming", "internal"), weights=(45, 32, 23))[0]
        if kind == "outgoing":
            # Now and then someone calls out from the meeting room, which nobody holds.
            if rng.random() < 0.006:
                ext = meeting_room
            call_type = rng.choices(list(_DIALLED), weights=[v[0] for v in _DIALLED.values()])[0]
            _, make, dial = _DIALLED[call_type]
            number = contacts.pick(rng, contacts.dialled[call_type], make)
            median = 150 if call_type == CallType.INTERNATIONAL else 80
            answered = rng.random() > 0.18
            calls.append(DemoCall(kind, call_type, start,
                                  rng.randint(4, 20) if answered else rng.randint(8, 45),
                                  _talk_seconds(rng, median) if answered else 0,
                                  ext, dial(number)))
        elif kind == "incoming":
            caller_type = rng.choices(list(_CALLERS), weights=[v[0] for v in _CALLERS.values()])[0]
            number = contacts.pick(rng, contacts.callers[caller_type], _CALLERS[caller_type][1])
            answered = rng.random() > 0.15
            calls.append(DemoCall(kind, CallType.INCOMING, start,
                                  rng.randint(3, 18) if answered else rng.randint(10, 40),
                                  _talk_seconds(rng, 100) if answered else 0, ext, number))
        else:
            callee = rng.choice([line for line in roster if line.name != ext.name])
            answered = rng.random() > 0.12
            calls.append(DemoCall(kind, CallType.INTERNAL, start,
                                  rng.randint(2, 12) if answered else rng.randint(10, 30),
                                  _talk_seconds(rng, 50) if answered else 0,
                                  ext, callee.dn, callee.name))
    calls.sort(key=lambda c: (c.start, c.extension.dn))
    return calls


@dataclass
class DemoCdr:
    """The CDR files of a period, with what they hold."""

    period: Period
    files: list[tuple[str, bytes]] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)  # by call type
    malformed: int = 0

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _history_base(day: date) -> int:
    # 3CX numbers its call history consecutively; a per-day base keeps ids unique across
    # periods while each day's file stays independent of the others.
    return (day - date(2000, 1, 1)).days * 1000


def demo_cdr(*, period: Period, seed: int = 1) -> DemoCdr:
    """R2: one 3CX CDR file per day of `period` (pure: names and bytes, nothing written).

    Lines are written when calls end, as 3CX does. The first day holds a line whose start
    time is garbage and the last day ends on a line cut short, as when the PBX stopped
    mid-write: the `MALFORMED_LINES` rejects.
    """
    contacts = Contacts(seed)
    result = DemoCdr(period=period)
    days = period.days
    for day in days:
        calls = demo_calls(day, seed=seed, period=period, contacts=contacts)
        rng = random.Random(f"tariscope-demo:{seed}:{day.isoformat()}:ids")
        base = _history_base(day)
        assert len(calls) < 990, "history ids of a day would run into the next day's"
        rows = []
        for n, call in enumerate(calls, start=1):
            fields = _cdr_fields(call, base + n, f"{rng.getrandbits(64):016x}_{n}")
            rows.append((fields["time-end"], _line(fields)))
            result.calls[call.call_type] += 1
        rows.sort(key=lambda row: row[0])
        lines = [text for _, text in rows]
        broken = calls[len(calls) // 2]
        if day == days[0]:
            fields = _cdr_fields(broken, base + 998, f"{rng.getrandbits(64):016x}_998")
            fields["time-start"] = fields["time-start"][:11] + "25:61:07"
            lines.insert(len(lines) // 2, _line(fields))
            result.malformed += 1
        if day == days[-1]:
            fields = _cdr_fields(broken, base + 999, f"{rng.getrandbits(64):016x}_999")
            lines.append(",".join(fields[name] for name in FIELDS_V18[:12]))
            result.malformed += 1
        name = f"cdr-{calls[0].start:%y%m%d%H%M%S}.log" if calls else f"cdr-{day:%y%m%d}.log"
        data = "".join(text + "\r\n" for text in lines)
        if day == days[-1]:
            data = data.removesuffix("\r\n")  # the cut-short line has no end either
        result.files.append((name, data.encode("utf-8")))
    return result


def demo_cdr_write(*, cdr_dir: Path, period: Period, seed: int = 1) -> tuple[DemoCdr, list[Path]]:
    """Write the period's CDR files into `cdr_dir`, each appearing whole (written under a
    hidden name, then renamed) so that a running folder observer never reads half a file."""
    cdr = demo_cdr(period=period, seed=seed)
    cdr_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in cdr.files:
        path = cdr_dir / name
        partial = cdr_dir / f".{name}.part"
        partial.write_bytes(data)
        os.replace(partial, path)
        paths.append(path)
    return cdr, paths


# --- The one write --------------------------------------------------------------------

class DemoSiteExists(Exception):
    """The demo's rows (or rows with the same names) are already in the database."""


@dataclass
class DemoSite:
    node: Node
    device: Device
    profile: ObserverProfile
    subscribers: int
    numbers: int
    groups: int
    tariffs: int
    codes: int
    cdr: DemoCdr
    files: list[Path]


def demo_name_clashes() -> list[str]:
    """Rows the demo would create whose unique names are taken already."""
    taken = [
        (Node, NODE_NAME, "node"), (Device, DEVICE_NAME, "device"),
        (ObserverProfile, PROFILE_NAME, "observer profile"),
        (Operator, OPERATOR_NAME, "operator"), (TariffPlan, PLAN_NAME, "tariff plan"),
    ]
    return [f"{label} {name!r}" for model, name, label in taken
            if model.objects.filter(name=name).exists()]


def demo_site_create(*, cdr_dir: Path, months: int = 1, seed: int = 1, today: date,
                     days: int | None = None) -> DemoSite:
    """R1-R6 shown end to end: a Kyiv node with a 3CX, its carrier's deck and plan, thirty
    subscribers, an observer profile and the CDR files of the demo period for it to collect."""
    period = demo_period(today=today, months=months, days=days)
    clashes = demo_name_clashes()
    if clashes:
        raise DemoSiteExists("already in the database: " + ", ".join(clashes))
    deck_tariffs, deck_codes = demo_deck()
    # Tariffs and codes in force well before the first call, as a real deck would be.
    since = date(period.first.year - 1, 1, 1)
    cdr_dir = Path(cdr_dir).resolve()
    with transaction.atomic():
        operator = Operator.objects.create(
            name=OPERATOR_NAME, currency="UAH",
            description="Demo carrier: SIP trunk of the Kyiv office (manage.py seed_demo).")
        plan = TariffPlan.objects.create(name=PLAN_NAME, description="Demo: the standard prices.")
        Tariff.objects.bulk_create(
            Tariff(operator=operator, name=t.name, call_type=t.call_type, valid_from=since,
                   account_description=t.account_description, first_interval=t.first_interval,
                   next_interval=t.next_interval)
            for t in deck_tariffs)
        # Re-read rather than trust bulk_create to return ids on every database.
        tariff_ids = dict(Tariff.objects.filter(operator=operator).values_list("name", "id"))
        TariffPrice.objects.bulk_create(
            TariffPrice(tariff_id=tariff_ids[t.name], plan=plan, price_per_minute=t.price)
            for t in deck_tariffs)
        PhoneCode.objects.bulk_create(
            (PhoneCode(operator=operator, code=c.code, name=c.name, tariff_id=tariff_ids[c.tariff],
                       call_type=c.call_type, valid_from=since) for c in deck_codes),
            batch_size=500)
        operator_rates_changed(operator_ids=[operator.pk])
        node = Node.objects.create(name=NODE_NAME, country="UA",
                                   description="Demo site created by manage.py seed_demo.")
        device = Device.objects.create(
            node=node, name=DEVICE_NAME, type=DeviceType.THREECX, timezone="Europe/Kyiv",
            access_code=ACCESS_CODE, national_prefix="0", international_prefix="00",
            country_code="380", area_code="44", extension_length=3,
            default_operator=operator, default_plan=plan)
        Route.objects.create(device=device, name=TRUNK_DN, operator=operator)
        groups: dict[str, SubscriberGroup] = {}
        for name, parent in GROUPS:
            groups[name] = SubscriberGroup.objects.create(node=node, name=name,
                                                          parent=groups.get(parent))
        # One by one: Subscriber.save() derives the account number from the id (R6.1).
        subscribers = {
            name: Subscriber.objects.create(full_name=name, group=groups[group],
                                            connection_date=period.first)
            for name, group in STAFF
        }
        numbers = []
        for index, (name, _) in enumerate(STAFF):
            dn = staff_extension(index)
            leaves = dn == REASSIGNED_DN
            numbers.append(PhoneNumber(
                subscriber=subscribers[name], device=device, dn=dn, valid_from=period.first,
                valid_to=period.reassigned_on - timedelta(days=1) if leaves else None))
        numbers.append(PhoneNumber(
            subscriber=subscribers[REASSIGNED_TO], device=device, dn=REASSIGNED_DN,
            valid_from=period.reassigned_on, description="Taken over from a colleague who left"))
        PhoneNumber.objects.bulk_create(numbers)
        profile = ObserverProfile.objects.create(
            name=PROFILE_NAME, device=device, source=SourceType.FOLDER,
            settings={"path": str(cdr_dir)})
    cdr, paths = demo_cdr_write(cdr_dir=cdr_dir, period=period, seed=seed)
    return DemoSite(node=node, device=device, profile=profile, subscribers=len(subscribers),
                    numbers=len(numbers), groups=len(groups), tariffs=len(deck_tariffs),
                    codes=len(deck_codes), cdr=cdr, files=paths)
