from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _after_the_last_app(sender, **kwargs):
    """post_migrate comes once per app with models, and each app's permissions are made in
    its own: the roles are synced after the last one, when every permission exists."""
    from tariscope.roles import roles_sync

    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if with_models and sender is with_models[-1]:
        roles_sync(**kwargs)


class TariscopeConfig(AppConfig):
    name = "tariscope"
    verbose_name = "Tariscope"

    def ready(self):
        # After every migrate, the roles' groups follow the permissions of this version.
        post_migrate.connect(_after_the_last_app, dispatch_uid="tariscope.roles_sync")
