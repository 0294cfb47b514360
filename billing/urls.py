from django.urls import path

from billing.views import calls, subscribers

urlpatterns = [
    # -- calls (billing/views/calls.py)
    path("calls/", calls.calls, name="calls"),
    path("calls/<int:pk>/", calls.call_detail, name="call_detail"),
    # -- subscribers, numbers, accounts (billing/views/subscribers.py)
    path("subscribers/", subscribers.subscriber_list, name="subscribers"),
    path("subscribers/<int:pk>/", subscribers.subscriber_detail, name="subscriber"),
    path("subscribers/<int:pk>/statement", subscribers.statement, name="statement"),
]
