from django.urls import path

from scripts import views

urlpatterns = [
    path("observers/<str:name>/scripts", views.observer_scripts, name="observer_scripts"),
    path("observers/<str:name>/scripts/<int:pk>/edit", views.binding_edit, name="binding_edit"),
    path("observers/<str:name>/scripts/<int:pk>/delete", views.binding_delete,
         name="binding_delete"),
    path("scripts/log", views.event_log, name="event_log"),
    path("scripts/alerts", views.alerts, name="alerts"),
    path("settings/mail", views.mail_settings, name="mail_settings"),
]
