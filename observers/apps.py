from django.apps import AppConfig


class ObserversConfig(AppConfig):
    name = "observers"
    default_auto_field = "django.db.models.BigAutoField"
