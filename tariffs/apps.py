from django.apps import AppConfig


class TariffsConfig(AppConfig):
    name = "tariffs"
    default_auto_field = "django.db.models.BigAutoField"
