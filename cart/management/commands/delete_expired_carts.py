from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from cart.services import carts_delete_expired


class Command(BaseCommand):
    help = "Delete anonymous carts untouched for CART_ANONYMOUS_TTL_DAYS (or --days)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=None, help="Override CART_ANONYMOUS_TTL_DAYS."
        )

    def handle(self, *args, days=None, **options):
        days = settings.CART_ANONYMOUS_TTL_DAYS if days is None else days
        if days < 0:
            self.stderr.write("--days must be zero or more.")
            return
        deleted = carts_delete_expired(older_than=timedelta(days=days))
        self.stdout.write(f"Deleted {deleted} anonymous cart(s) untouched for {days} day(s).")
