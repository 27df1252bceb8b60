"""allauth's forms, changed where the shop needs it (named in ``MFA_FORMS`` / ``ACCOUNT_FORMS``).

- The second-factor forms accept each TOTP code once, remembered in the database
  (``accounts.totp_codes``), so a code cannot be used twice while Redis is down.
- The sign-up form does the same work for an address that has an account as for a new one, so
  the time of the answer does not tell which it was.
"""

from __future__ import annotations

from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.core import context
from allauth.mfa import signals
from allauth.mfa.base.forms import AuthenticateForm as AllauthAuthenticateForm
from allauth.mfa.base.forms import ReauthenticateForm as AllauthReauthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.forms import ActivateTOTPForm as AllauthActivateTOTPForm
from django import forms
from django.contrib.auth.hashers import make_password

from .totp_codes import totp_code_use, totp_code_was_used

CODE_ALREADY_USED = (
    "That code has already been used. Wait for your app to show the next code, then enter it."
)


class _TotpCodeOnce:
    """After allauth found the code right: refuse it if the database says it was used already."""

    def _refuse_if_used(self, code: str) -> None:
        if not totp_code_use(user=self.user, code=code):
            raise forms.ValidationError(CODE_ALREADY_USED, code="code_already_used")


class _AuthenticateOnce(_TotpCodeOnce):
    reauthentication = False

    def clean_code(self) -> str:
        # Said before allauth looks: its cache refuses a used code too, but as "Incorrect code",
        # which sends a pharmacist who pressed twice to check their app for nothing.
        if totp_code_was_used(user=self.user, code=self.cleaned_data["code"]):
            raise forms.ValidationError(CODE_ALREADY_USED, code="code_already_used")
        code = super().clean_code()
        if self.authenticator.type == Authenticator.Type.TOTP:
            try:
                self._refuse_if_used(code)
            except forms.ValidationError:
                # A used code is a failed attempt, as allauth's form reports a wrong one.
                signals.authentication_failed.send(
                    sender=Authenticator,
                    request=context.request,
                    user=self.user,
                    authenticator=self.authenticator,
                    reauthentication=self.reauthentication,
                )
                raise
        return code


class AuthenticateForm(_AuthenticateOnce, AllauthAuthenticateForm):
    """The code step of signing in."""


class ReauthenticateForm(_AuthenticateOnce, AllauthReauthenticateForm):
    """The code asked again in a signed-in session (e.g. before the staff pages)."""

    reauthentication = True


class ActivateTOTPForm(_TotpCodeOnce, AllauthActivateTOTPForm):
    """Setting up the app: its first code counts as this session's second factor, so it too is
    used once."""

    def clean_code(self) -> str:
        code = super().clean_code()
        self._refuse_if_used(code)
        return code


class SignupForm(AllauthSignupForm):
    """allauth's sign-up form; for an address that already has an account (allauth then sends
    the owner an "account already exists" email instead of creating one) the password is hashed
    all the same, as creating the account would, and thrown away."""

    def try_save(self, request):
        if self.account_already_exists:
            make_password(self.cleaned_data.get("password1"))
        return super().try_save(request)
