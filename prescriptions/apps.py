from django.apps import AppConfig


class PrescriptionsConfig(AppConfig):
    """A patient's prescriptions: the record and its checks, the pharmacist's decisions,
    prescriptions on file, refills and continuing care. Sits above ``orders``: a decision acts on
    an order (captures or cancels its hold), an order never reaches up into a prescription."""

    name = "prescriptions"
