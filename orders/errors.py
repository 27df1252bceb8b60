"""The orders app's refusal: raised by its services and by the prescription step it calls
(``orders.prescription_step``), which therefore need not import the services."""


class OrderError(Exception):
    """A request about an order that cannot be carried out; ``message`` is fit to show.

    ``code`` says why when the caller acts on the reason (``card_declined``,
    ``authentication_required`` for a saved card; empty otherwise)."""

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
