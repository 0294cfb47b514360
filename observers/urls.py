from django.urls import path

from observers import views

urlpatterns = [
    path("observers/", views.observer_list, name="observer_list"),
    path("observers/new", views.observer_new, name="observer_new"),
    path("observers/<str:name>/edit", views.observer_edit, name="observer_edit"),
    path("observers/<str:name>/token/", views.observer_token, name="observer_token"),
    path("observers/<str:name>/<str:action>/", views.observer_toggle, name="observer_toggle"),
    path("observers/<str:name>/log", views.observer_log, name="observer_log"),
    path("observers/<str:name>/rejects", views.observer_rejects, name="observer_rejects"),
]
