"""The site configuration file's JSON schema, built from the models' own limits."""
from jsonschema import Draft202012Validator, FormatChecker

from billing.models import (
    AuthCodePosition,
    Device,
    DeviceType,
    Node,
    PhoneNumber,
    Route,
    RouteKind,
    Subscriber,
    SubscriberGroup,
    SubscriberType,
)
from observers.models import ArchivePeriod, LogLevel, ObserverProfile, SourceType
from observers.sources.settings import SOURCE_KEY_SCHEMAS, schema_list, schema_object
from restrictions.models import AuthCode
from scripts.events import Event
from scripts.models import ScriptBinding
from tariffs.models import Operator, TariffPlan

KINDS = (
    "operators", "plans", "nodes", "devices", "routes", "observers", "groups", "subscribers",
    "numbers", "scripts", "pbx_controls", "limits", "auth_codes",
)


class SiteConfigError(Exception):
    """The file was not applied; `errors` holds one line per problem, each naming its path."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


# --- The schema -----------------------------------------------------------------------------
# Built from the models' own limits (max_length, choices) so that the file and the tables
# cannot drift apart: whatever passes the schema fits the columns.

def max_length(model, name: str) -> int | None:
    return model._meta.get_field(name).max_length


def model_default(model, name: str):
    """What a new row holds in `name`: what the file means by leaving the key out."""
    return model._meta.get_field(name).get_default()


def _string(model=None, name: str | None = None, **extra) -> dict:
    schema = {"type": "string"}
    if model is not None and max_length(model, name):
        schema["maxLength"] = max_length(model, name)
    schema.update(extra)
    return schema


def _name(model, name: str = "name") -> dict:
    return _string(model, name, minLength=1, pattern=r"^\S(.*\S)?$",
                   description="a name without leading or trailing spaces")


def _digits(model, name: str) -> dict:
    return _string(model, name, pattern=r"^[0-9]*$", description="digits only")




DATE = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}

LOG_LEVELS = {level.name.lower(): level.value for level in LogLevel}
SUBSCRIBER_TYPES = {kind.name.lower(): kind.value for kind in SubscriberType}




OBSERVER = schema_object(
    {
        "name": _string(ObserverProfile, "name", minLength=1, pattern=r"^[A-Za-z0-9]+$",
                        description="letters and digits only"),
        "source": {"enum": list(SourceType.values)},
    },
    {
        "archive_period": {"enum": list(ArchivePeriod.values), "default": "month"},
        "log_level": {"enum": list(LOG_LEVELS), "default": "status"},
        "enabled": {"type": "boolean", "default": True},
        "remote": {"type": "boolean", "default": False},
        "archive_dir": _string(ObserverProfile, "archive_dir"),
    },
)
# The source keys are checked, with the source and the parser options, by
# observer_settings_problems(), which the UI's observer form calls too; here they are only
# declared, so that the file's schema does not report their errors a second time.
OBSERVER["properties"].update(dict.fromkeys(SOURCE_KEY_SCHEMAS, {}))


# Dial plan keys stored as Device fields of the same name (service_numbers is handled apart).
DIAL_PLAN_FIELDS = ("access_code", "national_prefix", "international_prefix", "country_code",
                    "area_code", "extension_length", "extension_pattern", "auth_code_position",
                    "auth_code_length")

DIAL_PLAN = schema_object({}, {
    "access_code": _digits(Device, "access_code"),
    "national_prefix": _digits(Device, "national_prefix"),
    "international_prefix": _digits(Device, "international_prefix"),
    "country_code": _digits(Device, "country_code"),
    "area_code": _digits(Device, "area_code"),
    "extension_length": {"type": "integer", "minimum": 1, "maximum": 32},
    "auth_code_position": {"enum": list(AuthCodePosition.values),
                           "description": "where authorization codes are dialled: "
                                          "'' (not used), before or after the number"},
    "auth_code_length": {"type": "integer", "minimum": 0, "maximum": 16},
    "extension_pattern": _string(Device, "extension_pattern",
                                 description="a regular expression for internal numbers"),
    "service_numbers": {
        "type": ["array", "string"],
        "items": {"type": "string", "pattern": r"^[^,\s]+$",
                  "description": "one number, without commas or spaces"},
        "maxLength": max_length(Device, "service_numbers"),
        "description": "a list of numbers, or one comma-separated string",
    },
})

ROUTE = schema_object(
    {"name": _name(Route), "operator": _name(Operator)},
    {"kind": {"enum": list(RouteKind.values), "default": "route"}},
)

DEVICE = schema_object(
    {"name": _name(Device), "type": {"enum": list(DeviceType.values)}},
    {
        "timezone": _string(Device, "timezone", minLength=1, default="UTC"),
        "dial_plan": DIAL_PLAN,
        "default_operator": _name(Operator),
        "default_plan": _name(TariffPlan),
        "routes": schema_list(ROUTE),
        "observer": OBSERVER,
        "observers": schema_list(OBSERVER),
        # R8.11, R8.3-R8.7: checked by the connector family's own description of its keys
        # (restrictions.connectors.config_problems) and by call_control_problems, which the
        # UI uses too; here only their shape.
        "connector": {"type": "object", "description": "how the PBX is reached and "
                                                         "controlled (docs/restrictions.md)"},
        "call_control": {"type": "object", "description": "the call-control rules "
                                                            "(docs/restrictions.md)"},
    },
)

NODE = schema_object(
    {"name": _name(Node)},
    {
        "country": _string(Node, "country", pattern=r"^([A-Z]{2})?$",
                           description="ISO 3166 alpha-2 code, e.g. UA"),
        "description": _string(Node, "description"),
        "devices": schema_list(DEVICE),
    },
)

GROUP = schema_object(
    {"name": _name(SubscriberGroup), "node": _name(Node)},
    {"parent": _name(SubscriberGroup)},
)

NUMBER = schema_object(
    {"dn": _name(PhoneNumber, "dn"), "device": _name(Device), "from": DATE},
    {"to": DATE, "description": _string(PhoneNumber, "description")},
)

SUBSCRIBER = schema_object(
    {"name": _name(Subscriber, "full_name")},
    {
        "group": _name(SubscriberGroup),
        "node": _name(Node),
        "plan": _name(TariffPlan),
        "type": {"enum": [*SUBSCRIBER_TYPES.values(), *SUBSCRIBER_TYPES]},
        "connection_date": DATE,
        "contract_number": _string(Subscriber, "contract_number"),
        "contract_date": DATE,
        "account_number": _name(Subscriber, "account_number"),
        **{key: _string(Subscriber, key) for key in (
            "personal_code", "edrpou", "tax_code", "bank_code", "bank_name", "bank_account",
            "email")},
        "numbers": schema_list(NUMBER),
    },
)

MONEY = {"type": ["string", "number"], "pattern": r"^[0-9]+(\.[0-9]{1,2})?$", "minimum": 0,
         "description": "an amount, e.g. \"500.00\" (a string keeps it exact; at most two "
                        "decimal places)"}

LIMIT = schema_object(
    {},
    {
        "subscriber": _name(Subscriber, "account_number"),
        "group": _name(SubscriberGroup),
        "node": _name(Node),
        "money": MONEY,
        "currency": _string(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. UAH"),
        "seconds": {"type": "integer", "minimum": 1},
        "call_types": {"type": "array", "uniqueItems": True,
                       "items": {"type": "integer", "minimum": 0, "maximum": 7},
                       "description": "the call types counted (docs/restrictions.md); "
                                      "all when left out"},
        "warn_percent": {"type": "integer", "minimum": 1, "maximum": 99},
        "enabled": {"type": "boolean", "default": True},
    },
)

AUTH_CODE = schema_object(
    {"code": {"type": "string", "pattern": r"^[0-9]{1,16}$", "description": "digits"},
     "subscriber": _name(Subscriber, "account_number")},
    {"enabled": {"type": "boolean", "default": True},
     "description": _string(AuthCode, "description")},
)

SCRIPT_BINDING = schema_object(
    {
        "profile": _string(ObserverProfile, "name", minLength=1),
        "event": {"enum": [event.value for event in Event]},
        "script": _string(ScriptBinding, "script", minLength=1, pattern=r"^[^/\\]+$",
                          description="a file name in TARISCOPE_SCRIPTS_DIR (or a shipped "
                                      "script's name)"),
    },
    {
        "enabled": {"type": "boolean", "default": True},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600, "default": 10},
        "interval": {"type": "integer", "minimum": 0, "default": 0,
                     "description": "periodic: seconds between runs"},
    },
)

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Tariscope site configuration",
    **schema_object({}, {
        "operators": schema_list(schema_object(
            {"name": _name(Operator)},
            {
                "currency": _string(Operator, "currency", pattern=r"^[A-Z]{3}$", default="UAH",
                                    description="ISO 4217 code, e.g. UAH"),
                "description": _string(Operator, "description"),
            },
        )),
        "plans": schema_list(schema_object({"name": _name(TariffPlan)},
                               {"description": _string(TariffPlan, "description")})),
        "nodes": schema_list(NODE),
        "groups": schema_list(GROUP),
        "subscribers": schema_list(SUBSCRIBER),
        "scripts": schema_list(SCRIPT_BINDING),
        "limits": schema_list(LIMIT),
        "auth_codes": schema_list(AUTH_CODE),
    }),
}

VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker(formats=["date"]))
