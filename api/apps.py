from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the bearer schemes with drf-spectacular (its extensions register on import).
        from api import schema  # noqa: F401
