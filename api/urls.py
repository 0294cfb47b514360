from django.urls import path

from api import observer

urlpatterns = [
    path("observer/profile", observer.ObserverProfileView.as_view(), name="api_observer_profile"),
    path("observer/ingest", observer.ObserverIngestView.as_view(), name="api_observer_ingest"),
]
