from django.urls import path

from tariffs import views

urlpatterns = [
    path("", views.import_upload, name="tariff_import"),
    path("<str:import_id>/sheet/", views.import_sheet, name="tariff_import_sheet"),
    path("<str:import_id>/mapping/", views.import_mapping, name="tariff_import_mapping"),
    path("<str:import_id>/options/", views.import_options, name="tariff_import_options"),
    path("<str:import_id>/progress/", views.import_progress, name="tariff_import_progress"),
    path("<str:import_id>/status/", views.import_status, name="tariff_import_status"),
    path("<str:import_id>/result/", views.import_result, name="tariff_import_result"),
    path("<str:import_id>/rejects.csv", views.import_rejects_csv, name="tariff_import_rejects"),
    path("<str:import_id>/discard/", views.import_discard, name="tariff_import_discard"),
]
