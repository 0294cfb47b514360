from django.urls import path

from tariffs import views

urlpatterns = [
    path("", views.tariff_index, name="tariffs"),
    # -- operators (R5.1) and what belongs to one: tariffs, codes, time bands (R4)
    path("operators/", views.operator_list, name="tariff_operators"),
    path("operators/new/", views.operator_new, name="tariff_operator_new"),
    path("operators/<int:pk>/", views.operator_detail, name="tariff_operator"),
    path("operators/<int:pk>/edit/", views.operator_edit, name="tariff_operator_edit"),
    path("operators/<int:pk>/copy/", views.operator_copy, name="tariff_operator_copy"),
    path("operators/<int:pk>/delete/", views.operator_delete, name="tariff_operator_delete"),
    path("operators/<int:pk>/tariffs/new/", views.tariff_new, name="tariff_new"),
    path("operators/<int:pk>/tariffs/<int:tariff_pk>/", views.tariff_detail, name="tariff_detail"),
    path("operators/<int:pk>/tariffs/<int:tariff_pk>/edit/", views.tariff_edit, name="tariff_edit"),
    path("operators/<int:pk>/tariffs/<int:tariff_pk>/delete/", views.tariff_delete,
         name="tariff_delete"),
    path("operators/<int:pk>/codes/", views.code_list, name="tariff_codes"),
    path("operators/<int:pk>/codes/new/", views.code_new, name="tariff_code_new"),
    path("operators/<int:pk>/codes/<int:code_pk>/edit/", views.code_edit, name="tariff_code_edit"),
    path("operators/<int:pk>/codes/<int:code_pk>/delete/", views.code_delete,
         name="tariff_code_delete"),
    path("operators/<int:pk>/bands/", views.band_list, name="tariff_bands"),
    path("operators/<int:pk>/bands/new/", views.band_new, name="tariff_band_new"),
    path("operators/<int:pk>/bands/<int:band_pk>/", views.band_detail, name="tariff_band_detail"),
    path("operators/<int:pk>/bands/<int:band_pk>/edit/", views.band_edit, name="tariff_band_edit"),
    path("operators/<int:pk>/bands/<int:band_pk>/delete/", views.band_delete,
         name="tariff_band_delete"),
    # -- tariff plans (R4.3)
    path("plans/", views.plan_list, name="tariff_plans"),
    path("plans/new/", views.plan_new, name="tariff_plan_new"),
    path("plans/<int:pk>/edit/", views.plan_edit, name="tariff_plan_edit"),
    path("plans/<int:pk>/delete/", views.plan_delete, name="tariff_plan_delete"),
    # -- bulk operations on the tariffs valid from a date (R5.4)
    path("bulk/", views.bulk_index, name="tariff_bulk"),
    path("bulk/description/", views.bulk_description, name="tariff_bulk_description"),
    path("bulk/move/", views.bulk_move, name="tariff_bulk_move"),
    path("bulk/delete/", views.bulk_delete, name="tariff_bulk_delete"),
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
