"""What the tests of the Tariffs pages share: users with the tariffs models' rights, and
reading a rendered page (its table rows, a field's inline errors, the messages)."""
import html as html_lib
import re

from django.contrib.auth.models import Permission, User

MODELS = ("operator", "tariffplan", "tariff", "tariffprice", "phonecode", "timeband")
READ = tuple(f"view_{m}" for m in MODELS)
ALL = tuple(f"{action}_{m}" for m in MODELS for action in ("view", "add", "change", "delete"))


def login(client, name: str, *codenames: str):
    """`client` logged in as a new user holding these rights of the tariffs app."""
    user = User.objects.create_user(name, password=f"pw-{name}-1")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tariffs",
                                                         codename__in=codenames))
    assert user.user_permissions.count() == len(set(codenames)), "a right is misspelt"
    client.force_login(user)
    return client


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def rows(html: str) -> list[str]:
    """The body rows of every table of the page, as text without tags."""
    found = []
    for body in re.findall(r"<tbody[^>]*>(.*?)</tbody>", html, re.S):
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
            found.append(text(row))
    return found


def row_of(html: str, needle: str) -> str:
    """The one table row that holds `needle`."""
    matching = [r for r in rows(html) if needle in r]
    assert len(matching) == 1, f"{len(matching)} rows hold {needle!r}: {rows(html)}"
    return matching[0]


def text(fragment: str) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def field_errors(html: str, field: str) -> str:
    """The error list Django renders under a form's field."""
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return text(found.group(1)) if found else ""


def form_errors(html: str) -> str:
    """The errors above a form (form_fields.html shows its non-field errors as messages)."""
    return " ".join(text(f) for f in re.findall(r'<li class="error">(.*?)</li>', html, re.S))
