from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        # Imported here, not at the top: these modules load models, which needs the app registry ready.
        from groups.routing import read_usd_cny_rate_with

        from . import signals  # noqa: F401
        from .selectors import usd_cny_rate

        read_usd_cny_rate_with(usd_cny_rate)
