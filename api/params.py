"""R10.8: how the original's integrations send parameters, read in one place.

A parameter may come in the query string (the original's examples send them there, even
on POST), as a form field or in a JSON object; names match case-insensitively; the
misspellings the original's own documentation sends are aliases of the right names.
Form and JSON fields win over the query string when both carry a name.
"""
from datetime import date
from decimal import Decimal, InvalidOperation

from rest_framework.exceptions import ParseError

MAX_INTEGER = 2**63 - 1

# Misspelt name -> the name it stands for (lower case).
ALIASES = {
    "contactnumber": "contractnumber",  # the original's parameter list for subscriber.create
    "paymen\u0435tid": "paymentid",  # with a Cyrillic "е", as in the original's payments example
}


class ParamError(Exception):
    """A missing or malformed parameter: answered 400 with a message naming it."""

    def __init__(self, name: str, message: str):
        super().__init__(f"parameter '{name}': {message}")
        self.name = name


def _canonical(name: str) -> str:
    name = name.strip().lower()
    return ALIASES.get(name, name)


class Params:
    """The parameters of one request, by lower-case canonical name."""

    def __init__(self, request):
        self.values: dict[str, str] = {}
        _refuse_repeated(request.query_params.lists())
        for key, value in request.query_params.items():
            self.values[_canonical(key)] = value
        try:
            data = request.data
        except ParseError:
            if request.method in ("GET", "HEAD"):
                # The original's examples send user name and password in the body of GET
                # requests too; a body we cannot read carries nothing the method needs.
                data = {}
            else:
                raise
        if hasattr(data, "lists"):  # a form (a JSON object cannot repeat a name)
            _refuse_repeated(data.lists())
        if hasattr(data, "items"):
            for key, value in data.items():
                if isinstance(key, str) and not isinstance(value, (dict, list)):
                    self.values[_canonical(key)] = "" if value is None else str(value)

    def text(self, name: str, *, required: bool = False, max_length: int | None = None) -> str:
        value = self.values.get(name, "").strip()
        if "\x00" in value:  # no text column holds one; PostgreSQL refuses it in a query
            raise ParamError(name, "contains a NUL character")
        if required and not value:
            raise ParamError(name, "is required")
        if max_length is not None and len(value) > max_length:
            raise ParamError(name, f"is longer than {max_length} characters")
        return value

    def integer(self, name: str, *, required: bool = True, default: int | None = None,
                minimum: int | None = 0) -> int | None:
        value = self.text(name, required=required)
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ParamError(name, f"{value!r} is not a whole number") from None
        if number > MAX_INTEGER:
            # Past any id the database holds; SQLite would fail on it with a server error.
            raise ParamError(name, f"must be at most {MAX_INTEGER}")
        if minimum is not None and number < minimum:
            raise ParamError(name, f"must be at least {minimum}")
        return number

    def day(self, name: str, *, required: bool = True) -> date | None:
        value = self.text(name, required=required)
        if not value:
            return None
        try:
            return date.fromisoformat(value) if len(value) == 10 else _bad_date()
        except ValueError:
            raise ParamError(name, f"{value!r} is not a date yyyy-mm-dd") from None

    def decimal(self, name: str, *, required: bool = True) -> Decimal | None:
        value = self.text(name, required=required)
        if not value:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ParamError(name, f"{value!r} is not a number") from None
        if not number.is_finite():
            raise ParamError(name, f"{value!r} is not a number")
        return number

    def page(self, *, default_size: int = 100, max_size: int = 500) -> tuple[int, int]:
        """The `page` (from 1) and `page_size` (1 to `max_size`) of a paged list."""
        page = self.integer("page", required=False, default=1, minimum=1)
        size = self.integer("page_size", required=False, default=default_size, minimum=1)
        if size > max_size:
            raise ParamError("page_size", f"must be at most {max_size}")
        if page > 1_000_000:
            raise ParamError("page", "must be at most 1000000")
        return page, size


def _refuse_repeated(lists) -> None:
    """A name given twice (`id=1&id=2`, or `id` and `ID`) would silently take one of the
    values: refuse it instead, naming it."""
    seen: dict[str, int] = {}
    for key, values in lists:
        name = _canonical(key)
        seen[name] = seen.get(name, 0) + len(values)
        if seen[name] > 1:
            raise ParamError(name, "is given more than once; give it once")


def paged(queryset, page: int, size: int, row) -> dict:
    """`{"count", "results"}`: two queries whatever the page size."""
    offset = (page - 1) * size
    return {"count": queryset.count(), "results": [row(obj) for obj in queryset[offset:offset + size]]}


def _bad_date():
    raise ValueError("not yyyy-mm-dd")
