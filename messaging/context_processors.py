"""`broker_name`: which broker this deployment runs on, for the staff navigation and dashboards."""
from messaging.brokers import BrokerConfigurationError, adapter_class


def broker(request):
    try:
        name = adapter_class().capabilities.name
    except BrokerConfigurationError:
        name = "unknown broker (check BROKER_URL)"
    return {"broker_name": name}
