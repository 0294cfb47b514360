from django.apps import AppConfig


class ScriptsConfig(AppConfig):
    name = "scripts"
    default_auto_field = "django.db.models.BigAutoField"
