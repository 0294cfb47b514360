from django.urls import path

from billing import views

urlpatterns = [
    path("calls/", views.calls, name="calls"),
    path("calls/<int:pk>/", views.call_detail, name="call_detail"),
    path("subscribers/", views.subscriber_list, name="subscribers"),
    path("subscribers/<int:pk>/", views.subscriber_detail, name="subscriber"),
    path("subscribers/<int:pk>/statement", views.statement, name="statement"),
]
