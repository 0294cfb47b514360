"""Reading and writing the site configuration file: YAML or JSON, strictly."""
import json
import re
from pathlib import Path

import yaml

from tariscope.siteconfig.schema import SiteConfigError


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses repeated keys, keeps dates as text (so a bad date is reported
    with its path, not as a loader crash) and reads only true/false as booleans (YAML 1.2:
    `country: NO` stays Norway)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_TIMESTAMP, _BOOL = "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool"
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_TIMESTAMP, _BOOL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _json_object(pairs):
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"duplicate key {repeated[0]!r}")
    return dict(pairs)


def format_of(path: Path) -> str | None:
    """'yaml' or 'json' by the file's extension; None when the extension says neither."""
    return {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(path.suffix.lower())


def site_config_parse(text: str, *, fmt: str | None = None, source: str = "input"):
    """Parse YAML or JSON text; with no `fmt`, JSON is tried first, then YAML."""
    if fmt in (None, "json"):
        try:
            data = json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            if fmt == "json":
                raise SiteConfigError([f"{source}: not valid JSON: {exc.msg} "
                                       f"at line {exc.lineno} column {exc.colno}"]) from None
            data = _parse_yaml(text, source)
        except ValueError as exc:
            raise SiteConfigError([f"{source}: not valid JSON: {exc}"]) from None
    else:
        data = _parse_yaml(text, source)
    if data is None:
        raise SiteConfigError([f"{source}: the file is empty"])
    return data


def _parse_yaml(text: str, source: str):
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SiteConfigError(
            [f"{source}: not valid YAML: {exc.problem or exc.context}{where}"]) from None
    except yaml.YAMLError as exc:
        raise SiteConfigError([f"{source}: not valid YAML: {exc}"]) from None


def site_config_load(path: Path):
    """Read and parse FILE; a missing or unreadable file is a SiteConfigError too."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SiteConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteConfigError([f"{path}: cannot be read: {exc}"]) from None
    return site_config_parse(text, fmt=format_of(path), source=str(path))


def site_config_dump(data: dict, fmt: str) -> str:
    """The export as YAML or JSON text."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
