"""The pages that span the whole site: the global search and the Settings area."""
from django.urls import path

from tariscope import views

urlpatterns = [
    path("search", views.search, name="search"),
    path("settings/", views.settings_index, name="settings"),
]
