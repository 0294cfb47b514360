"""R10: what the OpenAPI schema (/api/schema/) says about the API beyond what drf-spectacular
finds by itself: the two bearer schemes, the `{"message"}` errors, and the parameters the
views read by hand through api/params.py (so drf-spectacular cannot see them)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

PARAMS_NOTE = ("Parameters may come in the query string (also on POST), as form fields or in "
               "a JSON object; names match case-insensitively.")

ERROR = inline_serializer("Error", {"message": serializers.CharField()})

_ERROR_WHEN = {
    400: "A parameter is missing or malformed; the message names it.",
    401: "No token, or an invalid, expired or superseded token.",
    403: "The API user has no right to this method.",
    404: "An id names nothing.",
    409: "Conflict with what is stored.",
}


def errors(*codes: int) -> dict:
    """Responses `{"message": "…"}` for the given statuses (401 is always possible)."""
    return {code: OpenApiResponse(ERROR, description=_ERROR_WHEN[code])
            for code in sorted({401, *codes})}


_TYPES = {"int": OpenApiTypes.INT, "str": OpenApiTypes.STR, "date": OpenApiTypes.DATE,
          "decimal": OpenApiTypes.DECIMAL}


def query(name: str, kind: str, description: str, *, required: bool = False,
          enum=None) -> OpenApiParameter:
    """A parameter read by api/params.py, described as the original sends it: in the query."""
    extra = {"schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}} if (
        kind == "int" and enum is None) else {}
    parameter = OpenApiParameter(name, _TYPES[kind], OpenApiParameter.QUERY, required=required,
                                 description=description, enum=enum)
    if extra:
        parameter.type = extra["schema"]
    return parameter


def paging() -> list[OpenApiParameter]:
    return [query("page", "int", "Page number, from 1 (default 1)."),
            query("page_size", "int", "Rows per page, 1 to 500 (default 100).")]


def page_of(name: str, row) -> serializers.Serializer:
    return inline_serializer(name, {"count": serializers.IntegerField(),
                                    "results": serializers.ListField(child=row)})


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "The token from POST /api/auth, valid 6 hours."}


class ObserverTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.observer.ObserverTokenAuthentication"
    name = "observerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A remote observer profile's token (`obs_…`), issued in the UI."}


def strip_optional_slash(result, generator, request, public):
    """The API's routes end in `/?` (R10.8: a trailing slash is accepted), which the schema
    shows as a trailing slash; name each route as the original's documentation does."""
    result["paths"] = {path.rstrip("/"): item for path, item in result["paths"].items()}
    return result
