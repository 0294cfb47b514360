from django.apps import AppConfig


class RestrictionsConfig(AppConfig):
    name = "restrictions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from restrictions.services import restrictions_start

        restrictions_start()
