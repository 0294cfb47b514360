from django.apps import AppConfig


class ScriptsConfig(AppConfig):
    name = "scripts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from scripts.mail import mail_signals_connect
        from scripts.services import events_recording_start
        from scripts.sql import sql_functions_register

        sql_functions_register()
        mail_signals_connect()
        events_recording_start()
