"""REST API routes (R10) and the remote observers' endpoints (R2.6).

R10.8: the original's integrations put a slash before the `?`; both spellings answer.
"""
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api import accounts, auth, calls, observer, subscribers, tariffs


def _route(name: str, view, url_name: str):
    return re_path(rf"^{name}/?$", view.as_view(), name=url_name)


urlpatterns = [
    path("observer/profile", observer.ObserverProfileView.as_view(), name="api_observer_profile"),
    path("observer/ingest", observer.ObserverIngestView.as_view(), name="api_observer_ingest"),
    _route("auth", auth.AuthView, "api_auth"),
    _route("accounts/charges", accounts.ChargesView, "api_charges"),
    _route("accounts/payment", accounts.PaymentCreateView, "api_payment"),
    _route("accounts/payments", accounts.PaymentsView, "api_payments"),
    _route("subscriber/create", subscribers.SubscriberCreateView, "api_subscriber_create"),
    _route("subscriber/dnadd", subscribers.NumberAddView, "api_number_add"),
    _route("departments", subscribers.DepartmentsView, "api_departments"),
    _route("rateplans", subscribers.RatePlansView, "api_rateplans"),
    _route("pbxs", subscribers.PbxsView, "api_pbxs"),
    _route("subscribers", subscribers.SubscriberListView, "api_subscribers"),
    re_path(r"^subscribers/(?P<pk>[0-9]{1,18})/?$", subscribers.SubscriberDetailView.as_view(),
            name="api_subscriber"),
    _route("numbers", subscribers.NumberListView, "api_numbers"),
    _route("calls", calls.CallListView, "api_calls"),
    _route("tariffs", tariffs.TariffListView, "api_tariffs"),
    # Public (tariscope/settings.py, SPECTACULAR_SETTINGS): the schema and its docs page,
    # whose Swagger UI and Redoc come from our static files (drf-spectacular-sidecar).
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_redoc"),
]
