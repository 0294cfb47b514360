"""The tariff import wizard (R5.2) in a real browser: the steps as a person clicks them, and
the progress page's script, which only a browser runs."""
import contextlib
import csv
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tariffs import views
from tariffs.models import PhoneCode, Tariff
from tests.conftest import needs

pytestmark = pytest.mark.django_db(transaction=True)


def deck(path, rows: int):
    """A CSV deck of `rows` codes, 100 to a destination, and one row with a bad rate."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["Код", "Напрямок", "Ціна"])
        writer.writerows([str(1_000_000 + i), f"Напрямок {i // 100}", "0,5"] for i in range(rows))
        writer.writerow(["999", "Bad", "x"])
    return path


def log_in(browser, live_server):
    user = User.objects.create_user("tariffs", password="pw-tariffs-1")
    user.user_permissions.add(Permission.objects.get(codename="add_tariff"))
    browser.get(live_server.url + reverse("login"))
    browser.find_element(By.NAME, "username").send_keys("tariffs")
    browser.find_element(By.NAME, "password").send_keys("pw-tariffs-1")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "/accounts/login/" not in b.current_url)


def click(browser, text: str):
    old = browser.find_element(By.TAG_NAME, "h1")
    browser.find_element(By.XPATH, f"//button[normalize-space()='{text}']").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.TAG_NAME, "h1") != old)


def to_import(browser, live_server, path):
    """Steps 1-4 as a person clicks them, up to the Import button."""
    log_in(browser, live_server)
    browser.get(live_server.url + reverse("tariff_import"))
    Select(browser.find_element(By.NAME, "file_type")).select_by_value("csv")
    browser.find_element(By.NAME, "file").send_keys(str(path))
    click(browser, "Next")
    click(browser, "Next")  # the one "sheet" of a CSV file
    for field, column in (("code", "A"), ("name", "B"), ("rate", "C")):
        Select(browser.find_element(By.NAME, field)).select_by_value(column)
    click(browser, "Preview")
    preview = browser.find_element(By.CSS_SELECTOR, "table.preview tbody").text
    assert "1000000 Напрямок 0" in preview
    click(browser, "Next")
    browser.find_element(By.NAME, "new_operator").send_keys("Kyivstar")
    browser.find_element(By.NAME, "currency").send_keys("UAH")
    browser.find_element(By.NAME, "new_plan").send_keys("Standard")


def counts(browser) -> dict:
    return {key: int(browser.find_element(By.ID, key).text)
            for key in ("codes-added", "tariffs-added", "rejected")}


def test_a_person_walks_the_wizard_to_the_result(browser, live_server, tmp_path):
    # given a small deck (imported in the request on the embedded default; with a broker,
    # by a worker when there is one: here the file is below the size that needs one)
    path = deck(tmp_path / "deck.csv", 300)
    to_import(browser, live_server, path)
    # when Import is clicked
    click(browser, "Import")
    # then the result page says what was done, and the bad row
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Import tariffs")
    assert counts(browser) == {"codes-added": 300, "tariffs-added": 3, "rejected": 1}
    assert "302" in browser.find_element(By.CSS_SELECTOR, "table.rejected").text
    assert PhoneCode.objects.count() == 300 and Tariff.objects.count() == 3


def test_the_progress_page_fills_its_bar_and_opens_the_result(browser, live_server, tmp_path,
                                                              pipeline_worker, monkeypatch):
    # given a broker with a worker, and a deck of 300,000 codes
    needs(not django_settings.CELERY_TASK_ALWAYS_EAGER,
          "needs Redis (package redis-server): set CELERY_BROKER_URL=redis://...")
    monkeypatch.setattr(views, "BACKGROUND_BYTES", 0)
    path = deck(tmp_path / "deck.csv", 300_000)
    to_import(browser, live_server, path)
    # when Import is clicked, the page watched as it polls
    browser.find_element(By.XPATH, "//button[normalize-space()='Import']").click()
    bars, texts = set(), set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and "/result/" not in browser.current_url:
        with contextlib.suppress(WebDriverException):  # the page is being replaced
            bar = browser.find_element(By.ID, "import-progress")
            bars.add((bar.get_attribute("max"), bar.get_attribute("value")))
            texts.add(browser.find_element(By.ID, "import-state").text)
        time.sleep(0.05)
    # then the bar was filled with the rows written, and the page went to the result
    assert "/result/" in browser.current_url
    assert any(total == "300001" and 0 < int(done) <= 300_001 for total, done in bars
               if total and done), bars
    assert any(text.startswith("importing:") and "of 300,001 rows" in text for text in texts), texts
    assert counts(browser) == {"codes-added": 300_000, "tariffs-added": 3000, "rejected": 1}
