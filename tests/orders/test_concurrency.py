"""Two customers buy the last pack at the same moment: one wins, nothing is oversold."""
import threading

import pytest
from django.db import connection, connections

from orders import services
from orders.models import Order
from tests.orders.conftest import make_cart, place


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_two_concurrent_checkouts_of_the_last_unit(transactional_db, localstripe, general_tier):
    general_tier.stock = 1
    general_tier.save()
    carts = [make_cart(tier=general_tier), make_cart(tier=general_tier)]
    barrier = threading.Barrier(2)
    results: list = []

    def checkout(cart):
        try:
            barrier.wait(timeout=10)
            results.append(place(cart).order.number)
        except services.OrderError as exc:
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=checkout, args=(cart,)) for cart in carts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    wins = [r for r in results if isinstance(r, int)]
    losses = [r for r in results if isinstance(r, services.OrderError)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert "stock" in losses[0].message.lower()
    general_tier.refresh_from_db()
    assert general_tier.stock == 0
    assert Order.objects.count() == 1
