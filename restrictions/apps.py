from django.apps import AppConfig


class RestrictionsConfig(AppConfig):
    name = "restrictions"
    default_auto_field = "django.db.models.BigAutoField"
