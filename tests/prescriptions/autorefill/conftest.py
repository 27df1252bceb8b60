from tests.orders.conftest import baclofen_90, general_tier  # noqa: F401  (shared fixtures)
