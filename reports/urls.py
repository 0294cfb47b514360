from django.urls import path

from reports import views

urlpatterns = [
    path("reports/", views.report_index, name="reports"),
    path("reports/lookup/groups", views.lookup_groups, name="report_lookup_groups"),
    path("reports/lookup/subscribers", views.lookup_subscribers, name="report_lookup_subscribers"),
    path("reports/jobs/<int:pk>/", views.report_job, name="report_job"),
    path("reports/jobs/<int:pk>/status", views.report_job_status, name="report_job_status"),
    path("reports/<slug:name>/", views.report_page, name="report"),
]
