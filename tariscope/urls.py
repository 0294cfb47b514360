"""URL map: operator UI, admin, health."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from tariscope import health, views
from tariscope.login import LoginView

urlpatterns = [
    path("", views.home, name="home"),
    path("health", health.health, name="health"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("billing.urls")),
    path("", include("scripts.urls")),
    path("", include("observers.urls")),
    path("", include("restrictions.urls")),
    path("tariffs/", include("tariffs.urls")),
    path("", include("reports.urls")),
    path("", include("tariscope.pages_urls")),
    # The language switcher's POST (django.views.i18n.set_language).
    path("i18n/", include("django.conf.urls.i18n")),
]
