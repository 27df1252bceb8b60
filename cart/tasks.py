"""Celery wrappers for cart housekeeping (scheduled by the beat schedule in settings)."""

from celery import shared_task

from .services import carts_delete_expired


@shared_task(name="cart.delete_expired_carts")
def delete_expired_carts() -> int:
    """Remove anonymous carts untouched for CART_ANONYMOUS_TTL_DAYS; returns how many."""
    return carts_delete_expired()
