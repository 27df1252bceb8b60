"""Checkout: the page that turns a cart into an order and a card hold (``views``, ``forms``),
the figures the customer confirmed (``figures``) and placing the order (``placement``). It sits
above ``orders`` (which writes the order and follows its payment) and below ``prescriptions``
(whose auto-refill places orders the same way and reuses the address form)."""
