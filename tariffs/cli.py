"""What the management commands of every app share (four commands take dates). It sits in
the lowest app so that the commands of every app above may use it."""
from datetime import date

from django.core.management.base import CommandError


def iso_date(value: str) -> date:
    """An argparse type: a day written YYYY-MM-DD, or a clear command error."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None
