"""The checkout's tests share the orders tests' catalog fixtures (a general-sale pack, Baclofen 90)."""

from tests.orders.conftest import baclofen_90, general_tier  # noqa: F401  (fixtures)
