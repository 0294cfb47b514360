"""A seeded generator of an office's telephone traffic as rows of v_calls, and of fraud
injected into it: the evaluation of scripts/shipped/fraud_behaviour.py
(tests/scripts/test_fraud_behaviour.py).

The office: subscribers in groups, in Kyiv (+380 44, UTC+2), working 08:00-19:00 on
weekdays each with a rate of their own (a few heavy users), some calling abroad to a few
favourite countries of their own, the export department most; weekend workers at the
reception; part-timers, holidays of a week or two, people joining during the period; busy
days (2.5 times the calls), the accountants' month end (3 times), evenings of overtime, the
odd call abroad from anyone; unanswered calls; a fax line that is nobody's subscriber;
incoming and internal calls, which the model must pass over.

The fraud (`inject`), on the days after the learning period:
  night_burst     8-14 international calls between 01:00 and 03:30
  high_risk       one call to a high-risk destination (+882, +979, +53, +1876, ...)
  cost_spike      the day's cost 15-25 times the subscriber's median day, in office hours,
                  to the destinations it always calls
  hijacked        2-6 international calls from an extension that is nobody's
"""
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

HOME, CITY = "380", "44"
UTC_OFFSET = timedelta(hours=2)
FIRST_DAY = date(2024, 3, 4)  # a Monday
COMMON = ("44", "49", "48", "33", "39", "34", "1", "86", "90", "420", "36", "40", "31",
          "32", "41", "43", "46", "972", "971", "81")
HIGH_RISK = ("882", "883", "979", "881", "53", "1876", "252", "232", "675")
PER_MINUTE = {3: Decimal("0.50"), 4: Decimal("1.00"), 6: Decimal("1.50")}
HIGH_RISK_PER_MINUTE = Decimal("45.00")
GROUPS = (  # name, subscribers, share of international callers, their share of calls abroad
    ("Sales", 60, 0.15, 0.08), ("Support", 55, 0.05, 0.05), ("Accounting", 30, 0.0, 0.0),
    ("Management", 15, 0.6, 0.15), ("Export", 40, 0.9, 0.3), ("IT", 30, 0.1, 0.05),
    ("Logistics", 45, 0.3, 0.1), ("Reception", 25, 0.0, 0.0),
)


@dataclass
class Subscriber:
    id: int
    number: str
    name: str
    group_id: int
    group: str
    rate: float  # calls on a working day
    abroad: float  # share of the calls that go abroad
    favourites: tuple
    hours: tuple  # (start, end) of the working day, hours
    weekend: float = 0.0  # the chance of working on a Saturday (half of it on a Sunday)
    weekdays: frozenset = frozenset(range(5))
    away: frozenset = frozenset()  # days of holiday
    joins: int = 0  # the first day (index) with calls


@dataclass
class Anomaly:
    kind: str
    day: date
    subscriber_id: int | None
    number: str
    rows: list = field(default_factory=list)


@dataclass
class Traffic:
    subscribers: list
    rows: list  # every row of v_calls, ids in the order of their start
    rates: dict  # country -> price of a started minute
    anomalies: list = field(default_factory=list)

    def day(self, index: int) -> date:
        return FIRST_DAY + timedelta(days=index)


def _digits(rng, count):
    return "".join(rng.choice("0123456789") for _ in range(count))


def _row(subscriber, start, *, calltype, normalized, seconds, cost, direction=0,
         originator=None):
    return {
        "id": None, "originator": originator or subscriber.number,
        "dialnumber": ("00" + normalized) if calltype == 5 else normalized,
        "calldatetime": start, "calldatetime_utc": start - UTC_OFFSET,
        "callseconds": seconds, "billableseconds": seconds, "answered": seconds > 0,
        "calltype": calltype, "cost": cost, "currency": "UAH",
        "subscriber": subscriber.name if subscriber.id else "",
        "subscriber_id": subscriber.id or None,
        "group": subscriber.group or None, "group_id": subscriber.group_id or None,
        "device": "KyivPBX", "device_id": 1, "profile": "KyivPBX", "trunk": "SIP1",
        "normalized": normalized, "direction": direction,
    }


def _cost(calltype, seconds, country=None, rates=None):
    if seconds <= 0:
        return Decimal("0.00")
    started = math.ceil(seconds / 60)
    if calltype == 5:
        per = HIGH_RISK_PER_MINUTE if country in HIGH_RISK else rates[country]
    else:
        per = PER_MINUTE[calltype]
    return (per * started).quantize(Decimal("0.01"))


def _duration(rng, abroad=False):
    if rng.random() < 0.15:
        return 0  # not answered
    median = 200 if abroad else 75
    return int(min(3 * 3600, rng.lognormvariate(math.log(median), 0.9 if abroad else 1.0)))


def _call(rng, subscriber, start, rates, *, abroad_to=None, seconds=None):
    """One outgoing call of `subscriber` at `start`: abroad (to `abroad_to`, or by its
    share), else local, mobile or long-distance."""
    country = abroad_to
    if country is None and rng.random() < max(subscriber.abroad, 0.004):
        if subscriber.favourites and rng.random() < 0.9:
            country = rng.choice(subscriber.favourites)
        else:
            country = rng.choice(COMMON)
    if seconds is None:
        seconds = _duration(rng, abroad=country is not None)
    if country is not None:
        normalized = _abroad(rng, country)
        return _row(subscriber, start, calltype=5, normalized=normalized, seconds=seconds,
                    cost=_cost(5, seconds, country, rates))
    pick = rng.random()
    calltype = 3 if pick < 0.55 else 6 if pick < 0.85 else 4
    normalized = {3: HOME + CITY + _digits(rng, 7),
                  6: HOME + rng.choice(("67", "50", "63", "93")) + _digits(rng, 7),
                  4: HOME + rng.choice(("32", "56", "62", "48")) + _digits(rng, 7)}[calltype]
    return _row(subscriber, start, calltype=calltype, normalized=normalized, seconds=seconds,
                cost=_cost(calltype, seconds))


def _abroad(rng, country):
    """A number in `country`; in the USA (+1) with a US area code, not a Caribbean one."""
    if country == "1":
        return "1" + rng.choice(("212", "415", "312", "617", "305", "713")) + _digits(rng, 7)
    return country + _digits(rng, 9)


def _at(day, hour_float):
    return datetime.combine(day, datetime.min.time()) + timedelta(
        seconds=int(hour_float * 3600))


def _month_end(day):
    """The last two weekdays of the month."""
    later = [day + timedelta(days=n) for n in range(1, 6)]
    return sum(1 for d in later if d.month == day.month and d.weekday() < 5) < 2


def generate(seed: int = 20240304, subscribers: int = 300, days: int = 60) -> Traffic:
    rng = random.Random(seed)
    rates = {country: Decimal(str(rng.choice((3, 4, 5, 6, 8, 10, 12)))) for country in COMMON}
    people = []
    scale = subscribers / sum(size for _, size, _, _ in GROUPS)
    for group_id, (group, size, callers, share) in enumerate(GROUPS, start=1):
        for _ in range(max(1, round(size * scale))):
            number = str(100 + len(people))
            abroad = share * rng.uniform(0.5, 1.5) if rng.random() < callers else 0.0
            heavy = rng.random() < 0.05
            person = Subscriber(
                id=len(people) + 1, number=number, name=f"Subscriber {number}",
                group_id=group_id, group=group,
                rate=rng.lognormvariate(math.log(6), 0.6) * (5 if heavy else 1),
                abroad=abroad,
                favourites=tuple(rng.sample(COMMON, rng.randint(1, 3))) if abroad else (),
                hours=(rng.uniform(8.0, 9.5), rng.uniform(17.0, 18.8)))
            if group == "Reception" and rng.random() < 0.3:
                person.weekend = 0.8
            if rng.random() < 0.05:
                person.weekdays = frozenset(rng.sample(range(5), 2))  # a part-timer
            if rng.random() < 0.15:
                first = rng.randrange(days)
                person.away = frozenset(FIRST_DAY + timedelta(days=first + n)
                                        for n in range(rng.randint(5, 12)))
            people.append(person)
    for person, joins in zip(rng.sample(people, 8), (26, 27, 27, 28, 38, 40, 44, 50),
                             strict=True):
        person.joins = joins  # new people: little or no history of their own
    fax = Subscriber(id=0, number="199", name="", group_id=0, group="", rate=2, abroad=0,
                     favourites=(), hours=(9, 17))
    rows = []
    for index in range(days):
        day = FIRST_DAY + timedelta(days=index)
        for person in people:
            rows += _day_of(rng, person, day, index, rates)
        if day.weekday() < 5:
            rows += [_call(rng, fax, _at(day, rng.uniform(9, 17)), rates) for _ in range(2)]
    return _numbered(Traffic(people, rows, rates))


def _day_of(rng, person, day, index, rates):
    if index < person.joins or day in person.away:
        return []
    if day.weekday() < 5:
        if day.weekday() not in person.weekdays:
            return []
        factor = 1.0
    else:
        chance = person.weekend * (1 if day.weekday() == 5 else 0.5) or 0.01
        if rng.random() >= chance:
            return []
        factor = 0.5
    if rng.random() < 0.04:
        factor *= 2.5  # a busy day
    if person.group == "Accounting" and _month_end(day):
        factor *= 3
    start, end = person.hours
    if rng.random() < 0.06:
        end += 2  # overtime
    count = _poisson(rng, person.rate * factor)
    rows = [_call(rng, person, _at(day, rng.uniform(start, end)), rates) for _ in range(count)]
    if rng.random() < 0.3:  # an incoming call, and an internal one: not looked at
        when = _at(day, rng.uniform(start, end))
        rows.append(dict(_row(person, when, calltype=2, normalized=HOME + CITY + _digits(rng, 7),
                              seconds=60, cost=None, direction=1),
                         originator=HOME + CITY + _digits(rng, 7)))
        rows.append(_row(person, when, calltype=1, normalized=str(100 + rng.randrange(300)),
                         seconds=30, cost=None, direction=2))
    return rows


def _poisson(rng, mean):
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _numbered(traffic: Traffic) -> Traffic:
    """Ids in the order of the calls' start, as the calls would be stored."""
    traffic.rows.sort(key=lambda row: row["calldatetime"])
    for number, row in enumerate(traffic.rows, start=1):
        row["id"] = number
    return traffic


def inject(traffic: Traffic, *, seed: int = 7, each: int = 6, first_day: int = 30) -> Traffic:
    """`each` anomalies of each kind on random days from `first_day` on, by distinct
    subscribers; the rows numbered again."""
    rng = random.Random(seed)
    days = (traffic.rows[-1]["calldatetime"].date() - FIRST_DAY).days + 1
    rates = traffic.rates
    learnt = [row for row in traffic.rows
              if (row["calldatetime"].date() - FIRST_DAY).days < first_day]
    day_cost = {}
    for row in learnt:
        if row["direction"] == 0 and row["subscriber_id"]:
            key = (row["subscriber_id"], row["calldatetime"].date())
            day_cost[key] = day_cost.get(key, 0) + float(row["cost"] or 0)
    chosen = rng.sample([p for p in traffic.subscribers if p.joins == 0], 3 * each)
    anomalies = []
    for position, person in enumerate(chosen):
        kind = ("night_burst", "high_risk", "cost_spike")[position // each]
        day = FIRST_DAY + timedelta(days=rng.randrange(first_day, days))
        anomaly = Anomaly(kind, day, person.id, person.number)
        if kind == "night_burst":
            country = rng.choice(person.favourites or COMMON)
            for _ in range(rng.randint(8, 14)):
                anomaly.rows.append(_call(rng, person, _at(day, rng.uniform(1.0, 3.5)), rates,
                                          abroad_to=country, seconds=rng.randint(240, 900)))
        elif kind == "high_risk":
            prefix = rng.choice(HIGH_RISK)
            seconds = rng.randint(120, 360)
            anomaly.rows.append(_row(person, _at(day, rng.uniform(10, 16)), calltype=5,
                                     normalized=prefix + _digits(rng, 8), seconds=seconds,
                                     cost=_cost(5, seconds, prefix)))
        else:
            costs = sorted(cost for (sid, _), cost in day_cost.items() if sid == person.id)
            median = costs[len(costs) // 2] if costs else 10.0
            target, spent = max(median, 5.0) * rng.uniform(15, 25), 0.0
            while spent < target:
                country = rng.choice(person.favourites) if person.favourites else None
                row = _call(rng, person, _at(day, rng.uniform(*person.hours)), rates,
                            abroad_to=country, seconds=rng.randint(900, 2400))
                if country is None and row["calltype"] == 5:
                    continue
                spent += float(row["cost"])
                anomaly.rows.append(row)
        anomalies.append(anomaly)
    for number in range(each):
        extension = str(7000 + rng.randrange(1000))
        nobody = Subscriber(id=0, number=extension, name="", group_id=0, group="", rate=0,
                            abroad=0, favourites=(), hours=(0, 24))
        day = FIRST_DAY + timedelta(days=rng.randrange(first_day, days))
        anomaly = Anomaly("hijacked", day, None, extension)
        hour = rng.uniform(0, 20)
        for _ in range(rng.randint(2, 6)):
            country = rng.choice(COMMON + HIGH_RISK[:2]) if number % 2 else rng.choice(COMMON)
            hour += rng.uniform(0.05, 0.5)
            seconds = rng.randint(60, 1200)
            anomaly.rows.append(_row(nobody, _at(day, hour), calltype=5,
                                     normalized=_abroad(rng, country), seconds=seconds,
                                     cost=_cost(5, seconds, country, rates)))
        anomalies.append(anomaly)
    for anomaly in anomalies:
        traffic.rows += anomaly.rows
    traffic.anomalies = anomalies
    return _numbered(traffic)
