from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = "Insights"

    def ready(self) -> None:
        from booking.signals import booking_page_viewed, lead_routed
        from insights import receivers

        booking_page_viewed.connect(receivers.on_page_viewed, dispatch_uid="insights.page_viewed")
        lead_routed.connect(receivers.on_lead_routed, dispatch_uid="insights.lead_routed")
