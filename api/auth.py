"""R10.1, R10.2: API users' tokens, the base of every API method, and `POST /api/auth`.

A token is a JWT signed with HS256 by `settings.API_JWT_KEY` (its own key: not
SECRET_KEY), valid 6 hours, carrying the API user's id (`sub`) and token version (`ver`);
changing the user's password or rights bumps the version, and older tokens stop working.
"""
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView, exception_handler

from api.logins import FailedLogins, client_address
from api.models import ApiUser
from api.params import ParamError, Params
from api.schema import ERROR

TOKEN_LIFETIME = timedelta(hours=6)
_ALGORITHM = "HS256"
# Checked against when the user name is unknown, so that a wrong name costs as much time
# as a wrong password and does not tell which names exist.
_DUMMY_HASH = make_password("not a password of anyone")


class ApiUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "the REST API is not configured: set API_JWT_KEY"


def _key() -> str:
    key = settings.API_JWT_KEY
    if not key:
        raise ApiUnavailable()
    return key


def token_issue(user: ApiUser, *, now: datetime | None = None) -> tuple[str, datetime]:
    """R10.2: a token for `user` and the moment it expires."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = now + TOKEN_LIFETIME
    token = jwt.encode({"sub": str(user.pk), "ver": user.token_version,
                        "iat": int(now.timestamp()), "exp": int(expires.timestamp())},
                       _key(), algorithm=_ALGORITHM)
    return token, expires


def token_user(token: str) -> ApiUser:
    """The active API user a token was issued to, if it is valid and not superseded."""
    try:
        claims = jwt.decode(token, _key(), algorithms=[_ALGORITHM],
                            options={"require": ["exp", "iat", "sub"]})
    except jwt.ExpiredSignatureError:
        raise exceptions.AuthenticationFailed("the token has expired") from None
    except jwt.InvalidTokenError:
        raise exceptions.AuthenticationFailed("the token is not valid") from None
    try:
        user = ApiUser.objects.get(pk=int(claims["sub"]), active=True)
    except (ApiUser.DoesNotExist, TypeError, ValueError):
        raise exceptions.AuthenticationFailed("the token is not valid") from None
    if claims.get("ver") != user.token_version:
        raise exceptions.AuthenticationFailed(
            "the token was issued before the user's password or rights changed") from None
    return user


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token from /api/auth>`."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token_user(token.strip()), token.strip()

    def authenticate_header(self, request):
        return "Bearer"


class HasMethodRight(permissions.BasePermission):
    """R10.1: the API user holds the right to the view's `method` (None: any user)."""

    message = "no right to this method"

    def has_permission(self, request, view):
        user = request.user
        if not isinstance(user, ApiUser):
            return False
        method = getattr(view, "method", None)
        if method is not None and not user.may(method):
            self.message = f"the API user has no right to {method}"
            return False
        return True


def message_handler(exc, context):
    """Errors answer `{"message": "…"}` as the original does (R10.8)."""
    if isinstance(exc, ParamError):
        return Response({"message": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    response = exception_handler(exc, context)
    if response is not None:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = {"message": str(detail if detail is not None else response.data)}
    return response


class ApiView(APIView):
    """Base of the API methods: a token is required (deny unless a view says otherwise),
    and the user needs the right named by `method`."""

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [HasMethodRight]
    method: str | None = None

    def get_exception_handler(self):
        return message_handler

    def permission_denied(self, request, message=None, code=None):
        # No token at all answers 401 (DRF would say 403 when no authenticator ran).
        if not isinstance(request.user, ApiUser):
            raise exceptions.NotAuthenticated("a bearer token from /api/auth is required")
        super().permission_denied(request, message=message, code=code)

    def params(self) -> Params:
        return Params(self.request)


@extend_schema(
    summary="Get a token (R10.2)", tags=["auth"], request=None,
    description="Parameters may come in the query string, as form fields or in a JSON object; "
                "names match case-insensitively. Failed logins are throttled per account and "
                "per client address.",
    parameters=[OpenApiParameter("username", str, OpenApiParameter.QUERY, required=True),
                OpenApiParameter("password", str, OpenApiParameter.QUERY, required=True)],
    responses={
        200: inline_serializer("Token", {"token": serializers.CharField(),
                                         "expires": serializers.DateTimeField()}),
        400: OpenApiResponse(ERROR, description="username or password is missing."),
        401: OpenApiResponse(ERROR, description="Wrong user name or password."),
        429: OpenApiResponse(ERROR, description="Too many failed logins of this account or "
                                                "from this address; Retry-After says when."),
    })
class AuthView(ApiView):
    """R10.2: `POST /api/auth` with `username` and `password` (JSON, form or query)."""

    authentication_classes = []
    permission_classes = []

    def post(self, request):
        params = self.params()
        name = params.text("username", required=True)
        password = params.text("password", required=True)
        # Read when used, so that a changed setting applies (API_AUTH_FAILURES_RATE).
        failures = FailedLogins("api", api_settings.DEFAULT_THROTTLE_RATES["api_auth"])
        address = client_address(request)
        wait = failures.retry_after(username=name, address=address)
        if wait is not None:
            return Response({"message": f"too many failed logins; try again in {wait} s"},
                            status=status.HTTP_429_TOO_MANY_REQUESTS,
                            headers={"Retry-After": str(wait)})
        user = ApiUser.objects.filter(name=name, active=True).first()
        valid = user.check_password(password) if user else check_password(password, _DUMMY_HASH)
        if user is None or not valid:
            failures.failed(username=name, address=address)
            return Response({"message": "wrong user name or password"},
                            status=status.HTTP_401_UNAUTHORIZED,
                            headers={"WWW-Authenticate": "Bearer"})
        token, expires = token_issue(user)
        return Response({"token": token, "expires": expires.isoformat().replace("+00:00", "Z")})
