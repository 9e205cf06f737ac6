from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads and routing rules"
    default_auto_field = "django.db.models.BigAutoField"
