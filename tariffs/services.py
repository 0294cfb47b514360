"""Writes of tariff data (STYLE rule 2)."""
from collections.abc import Iterable

from django.db.models import F

from tariffs.models import Operator


def operator_rates_changed(*, operator_ids: Iterable[int]) -> None:
    """R4: after any write to codes, tariffs, prices or bands of these operators, make every
    process rebuild their compiled tariff indexes (a version stamp, not a timer)."""
    ids = {i for i in operator_ids if i is not None}
    if ids:
        Operator.objects.filter(pk__in=ids).update(rates_version=F("rates_version") + 1)
