"""The operator's Restrictions pages (R8, R11.1); the paths are what links and the docs
name."""
from django.urls import path

from restrictions import views

urlpatterns = [
    path("restrictions/", views.overview, name="restrictions"),
    path("restrictions/close", views.close, name="restrictions_close"),
    path("restrictions/closures/<int:pk>/reopen", views.reopen, name="restrictions_reopen"),
    path("restrictions/limits/", views.limits, name="restrictions_limits"),
    path("restrictions/limits/new", views.limit_new, name="restrictions_limit_new"),
    path("restrictions/limits/<int:pk>/edit", views.limit_edit, name="restrictions_limit_edit"),
    path("restrictions/limits/<int:pk>/delete", views.limit_remove,
         name="restrictions_limit_delete"),
    path("restrictions/pbx/<int:device_id>/sync", views.pbx_sync_now, name="restrictions_pbx_sync"),
    path("restrictions/history/", views.history, name="restrictions_history"),
    path("restrictions/actions/", views.actions, name="restrictions_actions"),
    path("restrictions/codes/", views.codes, name="restrictions_codes"),
    path("restrictions/codes/new", views.code_new, name="restrictions_code_new"),
    path("restrictions/codes/<int:pk>/edit", views.code_edit, name="restrictions_code_edit"),
    path("restrictions/codes/<int:pk>/delete", views.code_remove,
         name="restrictions_code_delete"),
    path("restrictions/lookup/subscribers", views.lookup_subscribers,
         name="restrictions_lookup_subscribers"),
    path("restrictions/lookup/groups", views.lookup_groups, name="restrictions_lookup_groups"),
]
