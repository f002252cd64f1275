from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReprocessConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reprocess"
    verbose_name = _("Reprocessing")
