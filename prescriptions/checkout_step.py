"""What orders ask of prescriptions, answered here (``settings.ORDERS_PRESCRIPTION_STEP``).

``orders.prescription_step`` defines the interface; each method hands over to the module that
owns the work, so this file only routes.
"""

from __future__ import annotations

from orders.errors import OrderError
from orders.prescription_step import CheckoutPart, OrderReview
from orders.prescription_step import PrescriptionStep as NoPrescriptions

from .forms import prescription_form_for
from .intake import prescriptions_record
from .models import ReviewAction
from .on_file import records_of_order_to_account
from .queue import review_state
from .refill_cart import cart_refills_of_lines, refills_verify_for_order
from .refill_checkout import refill_checkout_for
from .refill_count import refills_count_on_capture
from .reminders import reminder_consent_from_checkout

#: The pharmacist's decisions as the customer's order page lists them.
TIMELINE_REVIEWS = {
    ReviewAction.APPROVED: "Prescription approved by our pharmacist",
    ReviewAction.APPROVED_WITH_CHANGES: "Prescription approved with changes",
    ReviewAction.REJECTED: "Prescription not approved",
    ReviewAction.INFORMATION_REQUESTED: "Our pharmacist asked for more information",
    ReviewAction.AUTHORISATION_EXPIRED: "Card hold expired before the review",
}
MISSING_PRESCRIPTION = (
    "Please give the patient's details and a prescription for each prescription item."
)


class PrescriptionStep(NoPrescriptions):
    cart_line_relations = ("refill__prescription",)

    def checkout(self, request, *, user, lines, summary) -> CheckoutPart:
        """The refills' checks and the last address shipped to; a refill line is verified
        against its prescription on file, so only the other prescription lines ask for one."""
        refill_step = refill_checkout_for(user=user, cart_lines=lines, summary=summary)
        refills_in_cart = cart_refills_of_lines(lines)
        rx_lines = [line for line in summary.available_lines if line.tier_id not in refills_in_cart]
        return CheckoutPart(
            form=prescription_form_for(request, lines=rx_lines, user=user),
            address=refill_step.address or {},
            blocked=refill_step.blocked,
            context={"refill_step": refill_step, "refills_in_cart": refills_in_cart},
        )

    def checkout_placed(self, request, *, order, user) -> None:
        agreed = request.POST.get("refill_reminders") == "on"
        reminder_consent_from_checkout(user=user, agreed=agreed)

    def order_placed(self, *, order, cart, user, intake) -> None:
        """Refills are checked against the prescription on file (on locked rows); every other
        prescription line needs the patient and a prescription given at this checkout."""
        if not order.has_prescription_items:
            return
        refills_verify_for_order(order=order, cart=cart, user=user, add_patient=intake is None)
        if intake is not None:
            prescriptions_record(order=order, intake=intake)
        elif order.lines.filter(requires_prescription=True, refill__isnull=True).exists():
            raise OrderError(MISSING_PRESCRIPTION)

    def payment_captured(self, *, order, by) -> None:
        refills_count_on_capture(order=order, by=by)

    def order_claimed(self, *, order, user) -> None:
        records_of_order_to_account(order=order, user=user)

    def order_review(self, *, order) -> OrderReview:
        reviews = list(order.reviews.all()) if order.has_prescription_items else []
        state = review_state(order=order, reviews=reviews)
        return OrderReview(
            code=state.code if state else "",
            decisions=tuple(
                (review.created_at, TIMELINE_REVIEWS[review.action])
                for review in reviews
                if review.action in TIMELINE_REVIEWS
            ),
        )
