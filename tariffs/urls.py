from django.urls import path

from tariffs import views

urlpatterns = [
    path("", views.tariff_index, name="tariffs"),
    # -- the import wizard (R5.2)
    path("import/", views.import_upload, name="tariff_import"),
    path("import/<str:import_id>/sheet/", views.import_sheet, name="tariff_import_sheet"),
    path("import/<str:import_id>/mapping/", views.import_mapping, name="tariff_import_mapping"),
    path("import/<str:import_id>/options/", views.import_options, name="tariff_import_options"),
    path("import/<str:import_id>/progress/", views.import_progress, name="tariff_import_progress"),
    path("import/<str:import_id>/status/", views.import_status, name="tariff_import_status"),
    path("import/<str:import_id>/result/", views.import_result, name="tariff_import_result"),
    path("import/<str:import_id>/rejects.csv", views.import_rejects_csv, name="tariff_import_rejects"),
    path("import/<str:import_id>/discard/", views.import_discard, name="tariff_import_discard"),
]
