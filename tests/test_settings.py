"""R12.1 / STYLE rule 6: settings come from the environment, strictly."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'name': str(s.DATABASES['default']['NAME']), 'eager': s.CELERY_TASK_ALWAYS_EAGER, "
    "'key': s.SECRET_KEY, 'debug': s.DEBUG}))"
)


def _run(args, env_overrides, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG",
                        "ALLOWED_HOSTS", "TARISCOPE_DATA_DIR", "DJANGO_SETTINGS_MODULE",
                        "SECURE_HTTPS"}}
    env.update({"TARISCOPE_DATA_DIR": str(tmp_path / "data")}, **env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _probe(env_overrides, tmp_path):
    result = _run(["shell", "-c", PROBE], env_overrides, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_pass_the_deployment_check(tmp_path):
    # given production settings: DEBUG off, a real secret, a host name
    env = {"SECRET_KEY": "k" * 20 + "-Zq8#x!v" + "7" * 30, "ALLOWED_HOSTS": "billing.example.com"}
    # when Django's deployment check runs, failing on warnings too
    result = _run(["check", "--deploy", "--fail-level", "WARNING"], env, tmp_path)
    # then it passes
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    # given DEBUG off and no SECRET_KEY
    # when any command starts
    result = _run(["check"], {}, tmp_path)
    # then it stops with a message that says what to set
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_generates_a_secret_key_once_and_keeps_it(tmp_path):
    # given DEBUG on and no SECRET_KEY
    # when the settings load twice
    first = _probe({"DEBUG": "true"}, tmp_path)
    second = _probe({"DEBUG": "true"}, tmp_path)
    # then the same generated key, kept in the data directory, is used both times
    assert len(first["key"]) >= 50
    assert first["key"] == second["key"]
    assert (tmp_path / "data" / "secret_key").read_text().strip() == first["key"]


def test_embedded_default_is_sqlite_in_the_data_dir_with_in_process_tasks(tmp_path):
    # given neither DATABASE_URL nor CELERY_BROKER_URL
    # when the settings load
    probe = _probe({"DEBUG": "true"}, tmp_path)
    # then the database is a SQLite file in the data directory and tasks run eagerly
    assert probe["engine"] == "django.db.backends.sqlite3"
    assert probe["name"] == str((tmp_path / "data" / "tariscope.sqlite3").resolve())
    assert probe["eager"] is True


@pytest.mark.parametrize("url,engine", [
    ("postgres://u:p@db.example.com:5432/tariscope", "django.db.backends.postgresql"),
    ("sqlite:////tmp/other.sqlite3", "django.db.backends.sqlite3"),
])
def test_database_url_and_broker_url_select_the_production_services(tmp_path, url, engine):
    # given DATABASE_URL and a broker URL
    env = {"DEBUG": "true", "DATABASE_URL": url, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}
    # when the settings load
    probe = _probe(env, tmp_path)
    # then that database engine is used and tasks go to the broker
    assert probe["engine"] == engine
    assert probe["eager"] is False
