"""The orders app's refusal: raised by its services and by the prescription step it calls
(``orders.prescription_step``), which therefore need not import the services."""


class OrderError(Exception):
    """A request about an order that cannot be carried out; ``message`` is fit to show."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
