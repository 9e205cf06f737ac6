from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads and routing rules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from leads import checks  # noqa: F401 (registers the BATON_OWNER_BACKEND check)
