"""How django-allauth fits this shop: emails through the outbox, the lockout rule, staff notices.

allauth does sign-up, sign-in, verification, reset and the second factor; this adapter only
changes what the shop needs differently:

- every account email is rendered by allauth's templates and queued in the outbox
  (``notifications.services.email_queue_message``) instead of being sent during the request, so it
  is written in the request's transaction, retried when the mail server is down and sent once;
- failed sign-ins are counted per (account, client address) — never per address alone — and the
  count belongs to the account's current password, so the owner unlocks it by resetting it;
- staff get an email each time their account is signed in to.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from allauth.core.internal import ratelimit
from allauth.mfa.adapter import DefaultMFAAdapter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac

from notifications.models import EmailKind
from notifications.services import email_queue_message
from pharmacy.permissions import can_act_as_staff
from pharmacy.redirects import is_safe_next

# ``ratelimit`` is allauth's internal module, not the public ``allauth.core.ratelimit``, whose
# ``consume`` answers only True or False: a successful sign-in could not give its attempt back.
# Its public ``clear`` would wipe the per-address counter, so an attacker with one good account
# could reset the throttle between guesses (allauth's own adapter rolls back for that reason),
# and counting failures only after they happen is not atomic: parallel guesses would all pass.
# The internal module returns the usage records to roll back. Checked against django-allauth 65.22.1.

#: allauth's email templates → the outbox kind the email is filed under.
EMAIL_KINDS = {
    "account/email/email_confirmation_signup": EmailKind.ACCOUNT_VERIFICATION,
    "account/email/email_confirmation": EmailKind.ACCOUNT_VERIFICATION,
    "account/email/account_already_exists": EmailKind.ACCOUNT_VERIFICATION,
    "accounts/email/claim_order": EmailKind.ACCOUNT_VERIFICATION,
    "account/email/password_reset_key": EmailKind.ACCOUNT_PASSWORD_RESET,
    "account/email/unknown_account": EmailKind.ACCOUNT_PASSWORD_RESET,
    "account/email/email_changed": EmailKind.ACCOUNT_EMAIL_CHANGE,
    "account/email/email_confirm": EmailKind.ACCOUNT_EMAIL_CHANGE,
    "account/email/email_deleted": EmailKind.ACCOUNT_EMAIL_CHANGE,
    "account/email/password_changed": EmailKind.ACCOUNT_PASSWORD_CHANGED,
    "account/email/password_set": EmailKind.ACCOUNT_PASSWORD_CHANGED,
    "account/email/password_reset": EmailKind.ACCOUNT_PASSWORD_CHANGED,
    "accounts/email/staff_new_sign_in": EmailKind.ACCOUNT_NEW_SIGN_IN,
}


def password_generation(email: str) -> str:
    """A short tag that changes whenever the account's password changes ("" if no such account).

    Part of the failed-sign-in key: a reset gives the account a new password, hence a new key,
    hence no lock, without having to find and clear every (account, address) counter.
    """
    hashed = (
        get_user_model()
        .objects.filter(email__iexact=email.strip(), is_active=True)
        .values_list("password", flat=True)
        .first()
    )
    return salted_hmac("accounts.lockout", hashed).hexdigest()[:16] if hashed else ""


def lock_message() -> str:
    return (
        "Sign-in is paused for your security: there were too many failed attempts for this account "
        f"from your network. Try again in {settings.LOGIN_LOCK_MINUTES} minutes, sign in from another "
        "network, or reset your password by email to sign in at once."
    )


THROTTLE_MESSAGE = "Too many failed sign-ins from your network in the last minute. Please wait a minute and try again."


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "email_password_mismatch": "That email address and password do not match an account. "
        "Please check them and try again.",
    }

    def is_safe_url(self, url: str) -> bool:
        """allauth's check, then the shop's own (``pharmacy.redirects``): a bare word
        (``next=evil``) or a path no view answers is no place to send someone after signing in,
        so the default is used, as everywhere else in the shop."""
        return super().is_safe_url(url) and is_safe_next(allauth_context.request, url)

    def format_email_subject(self, subject: str) -> str:
        # The subject templates already name the pharmacy; no "[site]" prefix.
        return subject

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Render with allauth's templates (ours override them), then queue in the outbox."""
        request = allauth_context.request
        ctx = {
            "request": request,
            "email": email,
            "pharmacy_name": settings.PHARMACY_NAME,
            **context,
        }
        message = self.render_mail(template_prefix, email, ctx)
        html = next(
            (
                content
                for content, mimetype in getattr(message, "alternatives", [])
                if mimetype == "text/html"
            ),
            "",
        )
        email_queue_message(
            kind=EMAIL_KINDS.get(template_prefix, EmailKind.ACCOUNT_NOTICE),
            to=email,
            subject=message.subject,
            text=message.body,
            html=html,
        )

    def login_failure_key(self, request: HttpRequest, **credentials: Any) -> str:
        """The failed-sign-in counter: one per (account, client address, password generation).

        allauth counts per account by default, which lets a stranger lock the pharmacist out
        from anywhere. Keyed on the pair, the stranger locks only himself; the per-address
        throttle (``login_failed_address``) slows an address trying many accounts.
        """
        login = (credentials.get("email") or credentials.get("username") or "").strip().lower()
        return f"{login}:{self.get_client_ip(request)}:{password_generation(login)}"

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """Count this attempt against the address (throttle) and the (account, address) pair (lock).

        Two counters with their own messages; a successful sign-in gives both attempts back, so
        only failures count: allauth's ``authenticate`` rolls back the usage it finds in
        ``_login_failed_rl_usage`` (its own ``pre_authenticate`` leaves it there; no public hook
        does this; checked against django-allauth 65.22.1).
        """
        address = ratelimit.consume(request, app="allauth.account", action="login_failed_address")
        if address is None:
            raise ValidationError(THROTTLE_MESSAGE, code="too_many_login_attempts")
        pair = ratelimit.consume(
            request,
            app="allauth.account",
            action="login_failed",
            key=self.login_failure_key(request, **credentials),
        )
        if pair is None:
            address.rollback()
            raise ValidationError(lock_message(), code="too_many_login_attempts")
        self._login_failed_rl_usage = ratelimit.RateLimitUsage(usage=[*address.usage, *pair.usage])

    def login(self, request: HttpRequest, user) -> None:
        super().login(request, user)
        # The cart someone filled before signing in follows them into their account.
        from cart.services import cart_merge_into_user

        cart_merge_into_user(request=request, user=user)

    def post_login(self, request: HttpRequest, user, **kwargs):
        response = super().post_login(request, user, **kwargs)
        if can_act_as_staff(user):
            # Staff can move money and read prescriptions: tell them about every sign-in.
            self.send_notification_mail("accounts/email/staff_new_sign_in", user)
        return response

    def send_notification_mail(self, template_prefix: str, user, context=None, email=None) -> None:
        context = {"timestamp": timezone.localtime(), **(context or {})}
        super().send_notification_mail(template_prefix, user, context, email)


class MFAAdapter(DefaultMFAAdapter):
    def get_totp_issuer(self) -> str:
        return settings.MFA_TOTP_ISSUER
