"""R2.1, R2.2: each source declares its keys once (`SETTINGS`, observers/sources/keys.py);
the sources, the check of a profile, the Observers form and docs/observers.md agree with
those declarations."""
import json
import logging
import re
from pathlib import Path

import pytest

from observers.forms import UNCHANGED, settings_masked, source_keys_help
from observers.models import SourceType
from observers.sources import source_class
from observers.sources.folder import FolderWatcher
from observers.sources.keys import PARSER
from observers.sources.settings import DECLARED, SECRET_KEYS, SOURCES

DOC = Path(__file__).resolve().parents[2] / "docs" / "observers.md"
LOG = logging.getLogger("tests.observers.source_settings")
# A value for each required key that its source accepts.
REQUIRED_VALUES = {"path": "/srv/cdr", "user": "cdr", "password": "pw", "host": "pbx.example",
                   "port": 5100, "secret": "s3cret"}
# Where a source keeps a key's value when the attribute has another name.
ATTRIBUTES = {"retransmit_cache_seconds": "retransmit_seconds"}


# --- the declarations ---------------------------------------------------------------------

def test_every_source_type_declares_its_keys():
    # given the source types a profile may have, then each has its declaration, in order
    assert list(DECLARED) == list(SourceType.values)


@pytest.mark.parametrize("source", list(DECLARED))
def test_a_declaration_names_each_key_once_with_one_line_of_help(source):
    # given a source's declaration
    declared = DECLARED[source]
    names = [setting.name for setting in declared]
    # then no key is declared twice, every source takes the parser options,
    assert len(names) == len(set(names))
    assert PARSER in declared
    for setting in declared:
        # each key has a line of help, and a required key has no default
        assert setting.help and "\n" not in setting.help, setting.name
        assert not (setting.required and setting.default is not None), setting.name


def test_the_secret_keys_are_the_declared_ones():
    # given the keys declared secret, then exactly those are the form's secrets
    assert set(SECRET_KEYS) == {setting.name for declared in DECLARED.values()
                                for setting in declared if setting.secret} == {"password", "secret"}


def test_the_form_masks_every_declared_secret_and_a_clients_secret():
    # given settings that hold every secret key, and a RADIUS client with its own secret
    settings = {**dict.fromkeys(SECRET_KEYS, "hunter2"), "port": 1813,
                "clients": [{"address": "10.0.0.5", "secret": "hunter3"}]}
    # when the page shows them
    shown = settings_masked(settings)
    # then no secret is in the page, and the rest is as stored
    assert shown == {**dict.fromkeys(SECRET_KEYS, UNCHANGED), "port": 1813,
                     "clients": [{"address": "10.0.0.5", "secret": UNCHANGED}]}


def test_the_forms_key_list_is_the_declaration():
    # given the page's list of keys per source
    listed = {entry["source"]: entry for entry in source_keys_help()}
    # then it has every source's keys but `parser` (a field of its own), with their
    # defaults written as in the JSON of the settings
    for source, declared in DECLARED.items():
        required, optional = SOURCES[source]
        assert listed[source]["required"] == list(required)
        assert listed[source]["optional"] == [
            (key, None if default is None else json.dumps(default))
            for key, default in optional.items() if key != "parser"]
        assert [key for key, _ in listed[source]["help"]] == [
            setting.name for setting in declared if setting is not PARSER]


# --- the sources read their keys from the declaration -----------------------------------------

def _build(source: str, settings: dict, tmp_path: Path):
    """The source object of `source` with `settings` (a folder's FolderWatcher); `data_dir`
    keeps the FTP sources' default folders in tmp_path."""
    if source == SourceType.FOLDER:
        return FolderWatcher.from_settings(name="pbx", settings=settings, deliver=print)
    return source_class(source)(name="pbx", settings={**settings, "data_dir": str(tmp_path)},
                                deliver=print, log=LOG, notify=lambda event, **params: None)


def _value(source_object, key: str):
    attribute = ATTRIBUTES.get(key, key)
    if hasattr(source_object, attribute):
        return getattr(source_object, attribute)
    return getattr(source_object.config, attribute)  # the TCP sources' line keys


@pytest.mark.parametrize("left_out", ["absent", "null"])
@pytest.mark.parametrize("source", list(DECLARED))
def test_a_key_left_out_takes_its_declared_default(source, left_out, tmp_path):
    # given a profile of the source with only its required keys (the others absent or null)
    declared = DECLARED[source]
    settings = {setting.name: REQUIRED_VALUES[setting.name] for setting in declared
                if setting.required}
    if left_out == "null":
        settings.update({setting.name: None for setting in declared if not setting.required})
    # when the source is built
    source_object = _build(source, settings, tmp_path)
    # then each key with a default has that value in the source
    for setting in declared:
        if setting.default is not None:
            assert _value(source_object, setting.name) == setting.default, setting.name


@pytest.mark.parametrize(("source", "key"), [
    (source, setting.name) for source, declared in DECLARED.items()
    for setting in declared if setting.required])
def test_a_source_without_a_required_key_refuses_to_start_and_names_it(source, key, tmp_path):
    # given a profile of the source with every required key but one
    settings = {setting.name: REQUIRED_VALUES[setting.name] for setting in DECLARED[source]
                if setting.required and setting.name != key}
    # when the source is built, then it refuses, naming the key
    with pytest.raises(ValueError, match=rf"settings\.{key}\b"):
        _build(source, settings, tmp_path)


# --- docs/observers.md -----------------------------------------------------------------------

def _split_items(cell: str) -> list[str]:
    """A cell's comma-separated items; commas inside brackets or code do not split."""
    items, depth, code, start = [], 0, False, 0
    for index, char in enumerate(cell):
        if char == "`":
            code = not code
        elif not code and char == "(":
            depth += 1
        elif not code and char == ")":
            depth -= 1
        elif char == "," and not code and depth == 0:
            items.append(cell[start:index])
            start = index + 1
    return [item.strip() for item in [*items, cell[start:]] if item.strip()]


def _doc_table() -> dict[str, dict[str, str | None]]:
    """Source -> {key: what the doc gives in brackets after it, or None} of the table of
    "Sources and their keys"; a row may name several sources (the TCP line keys)."""
    text = DOC.read_text().split("## Sources and their keys", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows[0].startswith("| Source | Required | Optional (default) |")
    table: dict[str, dict[str, str | None]] = {}
    for row in rows[2:]:
        sources_cell, required_cell, optional_cell = (cell.strip() for cell in row.strip("|").split("|"))
        keys = {}
        for item in _split_items(required_cell) + _split_items(optional_cell):
            match = re.fullmatch(r"`(\w+)`(?:\s*\((.*)\))?", item)
            if match:  # not prose such as "and the line keys"
                assert match[1] not in keys, f"{match[1]} twice in a row"
                keys[match[1]] = match[2]
        required = {key for key in keys if f"`{key}`" in required_cell}
        for source in re.findall(r"`(\w+)`", sources_cell.split(":")[0]):
            entry = table.setdefault(source, {"keys": {}, "required": set()})
            assert not set(keys) & set(entry["keys"]), f"{source}: a key in two rows"
            entry["keys"].update(keys)
            entry["required"] |= required
    return table


def _doc_value(text: str):
    """The default the doc states in a key's brackets: the part before any ";", as a bool,
    a number ("512 MiB", "100,000", "30 s", "3 per connection") or text; None when it is a
    description ("e.g. …", "data dir", "PEM file")."""
    head = text.split(";")[0].replace("`", "").strip()
    if head in ("true", "false"):
        return head == "true"
    number = re.match(r"(\d[\d,]*(?:\.\d+)?)(\s+MiB)?(?=\s|$)", head)
    if number:
        return float(number[1].replace(",", "")) * (1024 * 1024 if number[2] else 1)
    return head


DOC_TABLE = _doc_table()


def test_the_doc_table_lists_every_source_and_says_all_take_parser():
    # given the doc's table, then it has a row for each source type, and says `parser`
    assert set(DOC_TABLE) == set(DECLARED)
    assert "All sources also take `parser`" in DOC.read_text()


@pytest.mark.parametrize("source", list(DECLARED))
def test_the_doc_table_gives_each_declared_key_with_its_default_and_no_other(source):
    # given a source's declaration and its keys in docs/observers.md
    declared = {setting.name: setting for setting in DECLARED[source] if setting is not PARSER}
    documented = DOC_TABLE[source]
    # then the doc lists exactly the declared keys, the required ones as required
    assert set(documented["keys"]) == set(declared)
    assert documented["required"] == {name for name, setting in declared.items() if setting.required}
    for name, setting in declared.items():
        stated = documented["keys"][name]
        if setting.default is None:
            # and a key without a fixed default is not given one
            assert stated is None or not isinstance(_doc_value(stated), bool | float), name
        else:
            # and each default is the declared one
            assert stated is not None, f"{name}: the doc gives no default ({setting.default!r})"
            assert _doc_value(stated) == setting.default, name
