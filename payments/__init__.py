"""Payments: the shop's one door to Stripe (``stripe_gateway``) and the offline Stripe for the
demo and the tests (``localstripe_dev``). It knows no other app of the shop: orders, prescriptions
(auto-refill) and accounts call down into it with amounts in minor units and ids, never with a
model."""
