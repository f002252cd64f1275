from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JobsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobs"
    verbose_name = _("TOQ jobs")

    def ready(self) -> None:
        from . import toq_source

        toq_source.connect_read_only_guard()
