from django.urls import path

from billing import views

urlpatterns = [
    path("calls/", views.calls, name="calls"),
    path("calls/<int:pk>/", views.call_detail, name="call_detail"),
    path("subscribers/<int:pk>/statement", views.statement, name="statement"),
]
