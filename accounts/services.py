"""Account workflows: saved addresses, the patient profile, data export, closing, guest orders.

Signing up, in and out, verification and passwords are django-allauth's (``accounts.adapter``).

Other apps read a customer's saved details only through ``default_address_for`` and
``patient_profile_for`` so they never depend on how accounts stores them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from prescriptions.messages import messages_export

from .models import Address, PatientProfile, User


def _is_customer(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


# --- What checkout reads --------------------------------------------------------------------


def default_address_for(user) -> dict[str, str] | None:
    """The customer's default shipping address for prefilling checkout, or None.

    Keys: full_name, line1, line2, city, state, postal_code. Anonymous users and customers
    with no saved address get None.
    """
    if not _is_customer(user):
        return None
    address = Address.objects.filter(user=user).order_by("-is_default", "created_at", "id").first()
    return address.as_checkout_dict() if address else None


def patient_profile_for(user) -> dict[str, Any] | None:
    """The customer's patient profile for prefilling the prescription step, or None.

    Keys: date_of_birth (date or None), phone, allergies, current_medicines, prescriber_name,
    prescriber_phone, prescriber_licence.
    """
    if not _is_customer(user):
        return None
    profile = PatientProfile.objects.filter(user=user).first()
    return profile.as_prefill_dict() if profile else None


# --- Addresses ------------------------------------------------------------------------------


@transaction.atomic
def address_save(*, user: User, address: Address, make_default: bool) -> Address:
    """Save a new or edited address, keeping exactly one default per customer.

    The first address a customer saves becomes the default whatever the checkbox said, so
    checkout always has something to prefill; likewise unticking the box on the current default
    keeps it (the customer picks another default instead).
    """
    # Lock the customer's addresses so two tabs can't each create a default.
    others = list(Address.objects.select_for_update().filter(user=user).exclude(pk=address.pk))
    was_default = (
        bool(address.pk) and Address.objects.filter(pk=address.pk, is_default=True).exists()
    )
    address.user = user
    address.is_default = (
        make_default or not others or (was_default and not any(a.is_default for a in others))
    )
    if address.is_default:
        Address.objects.filter(user=user, is_default=True).exclude(pk=address.pk).update(
            is_default=False
        )
    address.save()
    return address


@transaction.atomic
def address_set_default(*, address: Address) -> Address:
    list(Address.objects.select_for_update().filter(user_id=address.user_id))
    Address.objects.filter(user_id=address.user_id, is_default=True).exclude(pk=address.pk).update(
        is_default=False
    )
    address.is_default = True
    address.save(update_fields=["is_default", "updated_at"])
    return address


@transaction.atomic
def address_delete(*, address: Address) -> None:
    """Delete an address; if it was the default, the oldest remaining one takes over."""
    user_id, was_default = address.user_id, address.is_default
    address.delete()
    if was_default:
        successor = Address.objects.filter(user_id=user_id).order_by("created_at", "id").first()
        if successor:
            successor.is_default = True
            successor.save(update_fields=["is_default", "updated_at"])


# --- Privacy --------------------------------------------------------------------------------


def orders_for_history(*, user: User):
    """The customer's orders, newest first, in one query whatever their number."""
    from orders.services import orders_of_customer

    return orders_of_customer(user=user)


def account_export_data(*, user: User) -> dict[str, Any]:
    """Everything the pharmacy holds about the customer in their account, as JSON-ready data."""
    profile = PatientProfile.objects.filter(user=user).first()
    addresses = Address.objects.filter(user=user).order_by("-is_default", "created_at", "id")
    orders = []
    for order in orders_for_history(user=user):
        orders.append(order_summary(order))
    return {
        "exported_at": timezone.now().isoformat(),
        "pharmacy": settings.PHARMACY_NAME,
        "account": {
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "date_joined": user.date_joined.isoformat(),
            "last_login": user.last_login.isoformat() if user.last_login else None,
        },
        "patient_profile": (
            {
                **{k: v for k, v in profile.as_prefill_dict().items() if k != "date_of_birth"},
                "date_of_birth": profile.date_of_birth.isoformat()
                if profile.date_of_birth
                else None,
                "updated_at": profile.updated_at.isoformat(),
            }
            if profile
            else None
        ),
        "addresses": [{**a.as_checkout_dict(), "is_default": a.is_default} for a in addresses],
        "orders": orders,
        # Messages with a pharmacist (issue 25): health data the patient may take with them.
        "messages_with_pharmacist": messages_export(user=user),
        "record_retention_years": settings.PHARMACY_RECORD_RETENTION_YEARS,
    }


def order_summary(order) -> dict[str, Any]:
    """One order for the export: what the customer sees in their order history."""
    return {
        "number": order.number,
        "placed_at": order.created_at.isoformat(),
        "status": order.get_status_display(),
        "payment_status": order.get_payment_status_display(),
        "total": str(order.total.amount),
        "currency": str(order.total.currency),
        "email": order.email,
        "shipped_to": order.shipping_address_lines,
    }


def closed_email_for(user: User) -> str:
    return f"closed-account-{user.pk}@closed.invalid"


@transaction.atomic
def account_close(*, user: User) -> None:
    """Close the account: erase what the law lets us erase, keep pharmacy records.

    Orders and prescription records stay (``PHARMACY_RECORD_RETENTION_YEARS``); they carry their
    own snapshot of the email and shipping address, so nothing here rewrites them. The user row
    stays as the anchor those records point at, with no name, a placeholder email and no usable
    password, and is inactive so it can never sign in again.
    """
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator

    from cart.models import Cart

    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    Address.objects.filter(user=user).delete()
    PatientProfile.objects.filter(user=user).delete()
    Cart.objects.filter(user=user).delete()
    user.first_name = ""
    user.last_name = ""
    user.email = closed_email_for(user)
    user.is_active = False
    user.closed_at = timezone.now()
    user.set_unusable_password()
    user.save()


# --- Staff second factor -----------------------------------------------------------------------


class NotAllowed(Exception):
    pass


@transaction.atomic
def staff_second_factor_reset(*, user: User, by: User) -> int:
    """Remove a staff member's authenticators (lost phone): they set up a new one at next sign-in.

    Only a superuser may do it, never on their own account (another superuser must), and it is
    recorded in the admin's history (who, when, whose) like any admin change. Returns how many
    authenticators were removed.
    """
    from allauth.mfa.models import Authenticator
    from django.contrib.admin.models import CHANGE, LogEntry

    if not (by.is_active and by.is_superuser):
        raise NotAllowed("Only a superuser can reset another staff member's second factor.")
    if by.pk == user.pk:
        raise NotAllowed("Ask another superuser to reset your own second factor.")
    removed, _ = Authenticator.objects.filter(user=user).delete()
    LogEntry.objects.log_actions(
        user_id=by.pk,
        queryset=[user],
        action_flag=CHANGE,
        change_message=f"Second factor reset ({removed} authenticator(s) removed); set up again at next sign-in.",
        single_object=True,
    )
    return removed


# --- Guest orders -----------------------------------------------------------------------------

CLAIM_SALT = "accounts.claim-order"
CLAIM_MAX_AGE_SECONDS = 3 * 24 * 3600


def claim_token_make(*, order) -> str:
    """The token in the emailed "keep this order" link: the order and the address it went to."""
    return signing.dumps(
        {"o": order.number, "e": order.email.strip().lower()}, salt=CLAIM_SALT, compress=True
    )


def claim_token_read(*, token: str, number: int) -> str | None:
    """The email address the link was sent to, if the token is genuine, fresh and for ``number``."""
    try:
        data = signing.loads(token, salt=CLAIM_SALT, max_age=CLAIM_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("o") != number or not isinstance(data.get("e"), str):
        return None
    return data["e"]


@transaction.atomic
def account_create_verified(*, email: str, password: str) -> User:
    """An account whose address is already proven (the customer followed a link sent to it).

    The address is recorded as verified and primary in allauth's table, so the customer can
    sign in at once. A concurrent creation for the same address loses cleanly.
    """
    from allauth.account.models import EmailAddress

    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
    except IntegrityError as error:
        raise EmailAlreadyRegistered(email) from error
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


class EmailAlreadyRegistered(Exception):
    pass
