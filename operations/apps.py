from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """The staff back office: dashboards, health, metrics and controls, built on the services'
    selectors and messaging's; no service app imports it."""

    name = "operations"
    verbose_name = "Operations"
