"""R2.6: what a remote observer calls on the main server, with its own token (never the
database password): its profile, and the batches it collected."""
import re

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, permissions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from api.auth import message_handler
from api.schema import ERROR
from observers.models import ObserverProfile
from observers.services import remote_batch_receive, token_hash

_BATCH_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class ObserverPrincipal:
    """The remote observer a request comes from (request.user for these views)."""

    is_authenticated = True

    def __init__(self, profile: ObserverProfile):
        self.profile = profile


class ObserverTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer obs_…`, the token issued for one remote profile."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.startswith("obs_"):
            return None
        profile = ObserverProfile.objects.select_related("device").filter(
            remote_token_hash=token_hash(token.strip()), remote=True).first()
        if profile is None:
            raise exceptions.AuthenticationFailed("unknown or revoked observer token")
        return ObserverPrincipal(profile), token

    def authenticate_header(self, request):
        return "Bearer"


class RawBytesParser(BaseParser):
    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read()


class ObserverView(APIView):
    authentication_classes = [ObserverTokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]

    def get_exception_handler(self):
        return message_handler  # {"message": …}, as the rest of the API answers (R10.8)


_INGESTED = inline_serializer("IngestSummary", {
    "batch": serializers.CharField(), "duplicate": serializers.BooleanField()})


@extend_schema(
    summary="A remote observer's profile (R2.6)", tags=["observer"],
    responses={200: inline_serializer("ObserverProfile", {
        "name": serializers.CharField(), "source": serializers.CharField(),
        "settings": serializers.DictField(), "device": serializers.CharField(),
        "device_type": serializers.CharField(), "enabled": serializers.BooleanField()}),
        401: OpenApiResponse(ERROR, description="No, an unknown or a revoked observer token."),
        403: OpenApiResponse(ERROR, description="No observer token.")})
class ObserverProfileView(ObserverView):
    """GET /api/observer/profile: the settings the remote collector runs with."""

    def get(self, request):
        profile = request.user.profile
        return Response({
            "name": profile.name, "source": profile.source, "settings": profile.settings,
            "device": profile.device.name, "device_type": profile.device.type,
            "enabled": profile.enabled,
        })


@extend_schema(
    summary="A batch of raw CDR bytes from a remote observer (R2.6)", tags=["observer"],
    request={"application/octet-stream": OpenApiTypes.BINARY},
    parameters=[
        OpenApiParameter("X-Batch-Id", str, OpenApiParameter.HEADER, required=True,
                         description="Unique per batch and observer: 1-64 letters, digits, "
                                     "'_', '.', ':' or '-'. A batch sent again is acknowledged "
                                     "(200), not stored twice.", pattern=r"^[A-Za-z0-9_.:-]{1,64}$"),
        OpenApiParameter("X-Source-Name", str, OpenApiParameter.HEADER,
                         description="The source the bytes come from (at most 200 characters)."),
    ],
    responses={
        (201, "application/json"): OpenApiResponse(_INGESTED,
            description="Stored; the rest of the object summarises the parse."),
        (200, "application/json"): OpenApiResponse(_INGESTED,
            description="A batch already received: acknowledged, not stored again."),
        400: OpenApiResponse(ERROR, description="X-Batch-Id missing or malformed, or an empty batch."),
        413: OpenApiResponse(ERROR, description="Over TARISCOPE_REMOTE_BATCH_MAX_BYTES."),
        401: OpenApiResponse(ERROR, description="An unknown or revoked observer token."),
        403: OpenApiResponse(ERROR, description="No observer token."),
    })
class ObserverIngestView(ObserverView):
    """POST /api/observer/ingest: one batch of raw CDR bytes, `X-Batch-Id` (unique per batch
    and observer: a batch sent again is acknowledged, not stored twice), `X-Source-Name`."""

    parser_classes = [RawBytesParser]

    def post(self, request):
        batch_id = request.headers.get("X-Batch-Id", "")
        if not _BATCH_ID.match(batch_id):
            return Response({"message": "X-Batch-Id is missing or not 1-64 letters, digits, "
                                        "'_', '.', ':' or '-'"}, status=status.HTTP_400_BAD_REQUEST)
        data = self._body(request)
        if data is None:
            return Response({"message": f"the batch is over the main server's limit of "
                                        f"{settings.TARISCOPE_REMOTE_BATCH_MAX_BYTES} bytes "
                                        f"(TARISCOPE_REMOTE_BATCH_MAX_BYTES); send it in pieces"},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        if not data:
            return Response({"message": "the batch is empty"}, status=status.HTTP_400_BAD_REQUEST)
        source_name = request.headers.get("X-Source-Name", "remote")[:200]
        new, summary = remote_batch_receive(profile=request.user.profile, batch_id=batch_id,
                                            data=data, source_name=f"remote:{source_name}")
        return Response({"batch": batch_id, "duplicate": not new, **summary},
                        status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)

    @staticmethod
    def _body(request) -> bytes | None:
        """The batch, read from the stream up to TARISCOPE_REMOTE_BATCH_MAX_BYTES (None: over
        it). `request.body` would apply Django's 2.5 MiB form limit, which refused a 3 MB
        file on every retry and held up every batch after it."""
        limit = settings.TARISCOPE_REMOTE_BATCH_MAX_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return None
        stream = request.stream
        data = stream.read(limit + 1) if stream is not None else b""
        return None if len(data) > limit else data
