from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AwslogsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "awslogs"
    verbose_name = _("AWS evidence")
