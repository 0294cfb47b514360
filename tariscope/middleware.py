"""What every page and API method of the site shares on the way in (R12.2)."""
from django.http import HttpResponseBadRequest, JsonResponse


class RefuseNulInQueryMiddleware:
    """R12.2: a NUL character in a query-string value (`?q=%00`) is answered 400 naming the
    parameter, on every page at once. No stored text holds one, and PostgreSQL refuses it
    in a query: without this a search for it was a server error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for name, values in request.GET.lists():
            if any("\x00" in value for value in values):
                message = f"parameter '{name}': contains a NUL character"
                if request.path.startswith("/api/"):
                    return JsonResponse({"message": message}, status=400)  # R10.8's shape
                return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
