"""R11: the pages in Ukrainian and Russian show no English left untranslated. A page is
rendered in the language; every text it shows (the text between tags, and the titles,
placeholders and labels of its controls) that holds an English word is a failure, unless
it is data (a name the test's site gave, a currency code, a brand). The pages of this list
are those whose strings the catalogues (locale/<language>/LC_MESSAGES/django.po) cover
so far; a page joins the list when its strings are translated."""
import re

import pytest
from django.contrib.auth.models import Group, User

from tariscope.roles import READ_ONLY

pytestmark = pytest.mark.django_db

PAGES = ["/", "/search?q=zzz", "/search?q=10", "/settings/", "/tariffs/"]
# Data and names that are the same in every language.
NOT_WORDS = {"Tariscope", "English", "KyivPBX", "Ivan", "Petrenko", "Olena", "Koval", "Sales",
             "UAH", "CSV", "Access", "zzz", "Kyiv", "olena"}
TEXT = re.compile(r">([^<>]+)<")
ATTRIBUTES = re.compile(r'(?:title|placeholder|aria-label)="([^"]*)"')
WORD = re.compile(r"[A-Za-z]{3,}")
PROFILE = re.compile(r"\bProfile\d+\b")  # the factories' observer profiles


def shown_texts(html: str) -> list[str]:
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    html = re.sub(r"<option [^>]*>[^<]*</option>", "", html)  # the language names
    return [t.strip() for t in TEXT.findall(html) + ATTRIBUTES.findall(html) if t.strip()]


def english_in(html: str) -> list[str]:
    return [text for text in shown_texts(html)
            if any(word not in NOT_WORDS for word in WORD.findall(PROFILE.sub("", text)))]


@pytest.fixture
def operator(client, site):
    """A read-only operator (tariscope/roles.py): sees every page and its links."""
    user = User.objects.create_user("olena", password="pw-olena-1")
    user.groups.add(Group.objects.get(name=READ_ONLY))
    client.force_login(user)
    return client


@pytest.mark.parametrize("language", ["uk", "ru"])
@pytest.mark.parametrize("page", PAGES)
def test_the_page_shows_no_english_in_the_language(operator, language, page):
    # when the page is opened in the language
    operator.cookies["django_language"] = language
    response = operator.get(page, HTTP_ACCEPT_LANGUAGE=language)
    # then it is in that language, and nothing English is left
    assert response.headers["Content-Language"] == language
    assert english_in(response.content.decode()) == []


def test_the_check_finds_english_left_in_a_page(operator):
    # given the same page in English: the check must see its words
    response = operator.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Dashboard" in english_in(response.content.decode())
