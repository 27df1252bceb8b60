"""Remove a staff member's second factor (lost phone), recorded in the admin history.

manage.py reset_second_factor pharmacist@pharmacy.example --by admin@pharmacy.example
"""

from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import User


class Command(BaseCommand):
    help = (
        "Reset another staff member's second factor; --by names the superuser doing it (recorded)."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="The staff member whose authenticators are removed.")
        parser.add_argument("--by", required=True, help="Email of the superuser doing the reset.")

    def handle(self, *args, email: str, by: str, **options):
        user = User.objects.filter(email__iexact=email).first()
        actor = User.objects.filter(email__iexact=by).first()
        if user is None or actor is None:
            raise CommandError("No account with that email address.")
        try:
            removed = services.staff_second_factor_reset(user=user, by=actor)
        except services.NotAllowed as refusal:
            raise CommandError(str(refusal)) from refusal
        self.stdout.write(
            f"{user.email}: {removed} authenticator(s) removed by {actor.email}; "
            "they set up a new one at their next visit to a staff page."
        )
