"""The customer's own pages, and the few places where the shop differs from django-allauth.

allauth serves sign-up, sign-in, sign-out, verification, passwords and the second factor
(``accounts.adapter`` routes its emails and counts failed sign-ins); this module adds:
- ``PasswordResetView``: beyond the per-address limit the page answers as usual and sends nothing;
- ``ActivateTOTPView``: setting up the authenticator is a checked code, so it counts as this
  session's second factor (staff go straight on to the page they were sent from);
- the account page, addresses, health details, data export, closing, keeping a guest order.
"""

import json

from allauth.account.internal.flows.login import record_authentication
from allauth.account.views import PasswordResetView as AllauthPasswordResetView
from allauth.core import ratelimit
from allauth.mfa.totp.views import ActivateTOTPView as AllauthActivateTOTPView
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from pharmacy.redirects import safe_next

from . import services
from .adapter import AccountAdapter
from .forms import AddressForm, ClaimOrderForm, CloseAccountForm, PatientProfileForm
from .models import Address, PatientProfile, User

# ``record_authentication`` is allauth-internal: no public call records a factor as used in this
# session (the public ``allauth.account.authentication`` only reads the records), and
# ``ActivateTOTPView`` must record the code that set the authenticator up. Checked against
# django-allauth 65.22.1.

STAFF_NEXT_SESSION_KEY = "accounts_second_factor_next"


def _safe_next(request, default: str) -> str:
    """The ``next`` the client named if it is a page of this site, else ``default`` (a bare word,
    another host or a path that is no page fall back). Answer with ``HttpResponseRedirect``."""
    return safe_next(request, request.POST.get("next"), request.GET.get("next"), default=default)


def too_many_requests(request) -> HttpResponse:
    return render(request, "accounts/too_many_requests.html", status=429)


# --- Password reset and the second factor ------------------------------------------------------


class PasswordResetView(AllauthPasswordResetView):
    """allauth's reset page, with the per-address email limit answered silently.

    allauth answers 429 when its limit is reached, which tells whoever asks that the address
    is being reset. Here the client is limited with a 429 (``reset_password``, per address of
    the client), but the email address only by not sending (``reset_password_email``): the page
    says the same thing whether an email went out or not.
    """

    def form_valid(self, form):
        r429 = ratelimit.consume_or_429(self.request, action="reset_password")
        if r429:
            return r429
        if ratelimit.consume(
            self.request, action="reset_password_email", key=form.cleaned_data["email"].lower()
        ):
            form.save(self.request)
        return HttpResponseRedirect(self.get_success_url())


class ActivateTOTPView(AllauthActivateTOTPView):
    def dispatch(self, request, *args, **kwargs):
        next_url = _safe_next(request, "")
        if next_url:
            request.session[STAFF_NEXT_SESSION_KEY] = next_url
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        # The form checked a code from the new authenticator: record it as allauth records a
        # second-factor sign-in, so the staff member is not asked for another code at once.
        from allauth.mfa.models import Authenticator

        authenticator = Authenticator.objects.get(
            user=self.request.user, type=Authenticator.Type.TOTP
        )
        record_authentication(
            self.request, self.request.user, "mfa", id=authenticator.pk, type="totp"
        )
        return response


# --- The account page -----------------------------------------------------------------------


@never_cache
@login_required
def dashboard(request):
    user = request.user
    addresses = list(Address.objects.filter(user=user).order_by("-is_default", "created_at", "id"))
    profile = PatientProfile.objects.filter(user=user).first()
    orders = list(services.orders_for_history(user=user))
    return render(
        request,
        "accounts/dashboard.html",
        {
            "addresses": addresses,
            "profile": profile,
            "orders": orders,
            "licensed_states": set(settings.PHARMACY_LICENSED_STATES),
        },
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def address_add(request):
    form = AddressForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.address_save(
            user=request.user,
            address=form.save(commit=False),
            make_default=form.cleaned_data["is_default"],
        )
        messages.success(request, "Address saved.")
        return HttpResponseRedirect(
            _safe_next(request, reverse("accounts:dashboard") + "#addresses")
        )
    return render(request, "accounts/address_form.html", {"form": form, "adding": True})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def address_edit(request, pk: int):
    address = get_object_or_404(Address, pk=pk, user=request.user)
    form = AddressForm(request.POST or None, instance=address)
    if request.method == "POST" and form.is_valid():
        services.address_save(
            user=request.user,
            address=form.save(commit=False),
            make_default=form.cleaned_data["is_default"],
        )
        messages.success(request, "Address updated.")
        return redirect(reverse("accounts:dashboard") + "#addresses")
    return render(
        request, "accounts/address_form.html", {"form": form, "address": address, "adding": False}
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def address_delete(request, pk: int):
    address = get_object_or_404(Address, pk=pk, user=request.user)
    if request.method == "POST":
        services.address_delete(address=address)
        messages.success(request, "Address deleted.")
        return redirect(reverse("accounts:dashboard") + "#addresses")
    return render(request, "accounts/address_confirm_delete.html", {"address": address})


@login_required
@require_POST
def address_make_default(request, pk: int):
    address = get_object_or_404(Address, pk=pk, user=request.user)
    services.address_set_default(address=address)
    messages.success(request, "Default shipping address changed.")
    return redirect(reverse("accounts:dashboard") + "#addresses")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def patient_profile(request):
    profile = PatientProfile.objects.filter(user=request.user).first() or PatientProfile(
        user=request.user
    )
    form = PatientProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your health details are saved.")
        return HttpResponseRedirect(_safe_next(request, reverse("accounts:dashboard") + "#profile"))
    return render(request, "accounts/patient_profile_form.html", {"form": form})


# --- Privacy --------------------------------------------------------------------------------


@never_cache
@login_required
@require_http_methods(["GET"])
def data_export(request):
    data = services.account_export_data(user=request.user)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="my-pharmacy-data.json"'
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def close_account(request):
    form = CloseAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        services.account_close(user=request.user)
        logout(request)
        messages.success(
            request,
            "Your account is closed and your personal details have been removed. "
            "Thank you for using our pharmacy.",
        )
        return redirect("catalog:home")
    return render(
        request,
        "accounts/close_account.html",
        {"form": form, "retention_years": settings.PHARMACY_RECORD_RETENTION_YEARS},
    )


# --- Keeping a guest order --------------------------------------------------------------------
#
# The order's signed link proves the visitor holds the order, not that they own its email
# address. So the account is made only from a second link, emailed to that address: following it
# proves the address, then the account exists (verified) and the order is in it.


def _claimable_order(request, number: int):
    """The order named in the link and its token, if the token is a genuine link to this order
    (it may be too old, or the order may be in an account by now: ``LinkState``)."""
    from orders.services import LinkState, order_by_number, order_link_check

    token = request.POST.get("t") or request.GET.get("t", "")
    order = order_by_number(number)
    state = order_link_check(order=order, token=token) if order is not None and token else None
    if state is None or state is LinkState.INVALID:
        raise Http404("This link is not valid. Open the link from your order confirmation again.")
    return order, token, state


def _claim_refused(request, order, *, reason: str, status: int) -> HttpResponse:
    """The order cannot be kept in this account (it is in one already): say so, and where to sign in."""
    return render(
        request,
        "accounts/claim_order.html",
        {"order": order, "refused": reason, "sign_in_url": _sign_in_to(order)},
        status=status,
    )


def _sign_in_to(order) -> str:
    return f"{reverse('accounts:login')}?{urlencode({'next': order.get_absolute_url()})}"


def _in_an_account(request, order) -> HttpResponse:
    """A claim link for an order that is in an account already: its owner is sent to it, anyone
    else told that it is taken (409) and where to sign in."""
    if request.user.is_authenticated and order.user_id == request.user.pk:
        return redirect(order.get_absolute_url())
    return _claim_refused(
        request,
        order,
        reason=f"Order {order.number} is already in an account, so it cannot be added to another one.",
        status=409,
    )


def _attach(request, order, user) -> HttpResponse:
    from orders.services import OrderError, order_attach_to_customer

    try:
        order_attach_to_customer(order=order, user=user)
    except OrderError as error:
        return _claim_refused(request, order, reason=str(error), status=409)
    messages.success(request, f"Order {order.number} is now in your account.")
    return redirect(reverse("accounts:dashboard") + "#orders")


def _has_verified_email(user, email: str) -> bool:
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


@never_cache
@require_http_methods(["GET", "POST"])
def claim_order(request, number: int):
    """From a guest's order page: keep the order in an account, through a link sent to its email."""
    from orders.services import LinkState

    order, token, state = _claimable_order(request, number)
    if order.user_id is not None:
        return _in_an_account(request, order)
    if state is LinkState.EXPIRED:
        return render(
            request,
            "accounts/claim_order.html",
            {"order": order, "link_expired": True, "link_days": settings.ORDER_LINK_MAX_AGE_DAYS},
            status=410,
        )

    if request.user.is_authenticated:
        if not _has_verified_email(request.user, order.email):
            return render(
                request, "accounts/claim_order.html", {"order": order, "mismatch": True}, status=403
            )
        if request.method == "POST":
            return _attach(request, order, request.user)
        return render(
            request, "accounts/claim_order.html", {"order": order, "token": token, "confirm": True}
        )

    if request.method == "POST":
        # Whether or not the address has an account, the same answer and one email to it.
        if ratelimit.consume(request, action="confirm_email", key=order.email.lower()):
            link = reverse(
                "accounts:claim_order_confirm",
                kwargs={"number": order.number, "token": services.claim_token_make(order=order)},
            )
            AccountAdapter(request).send_mail(
                "accounts/email/claim_order",
                order.email,
                {"order_number": order.number, "claim_url": request.build_absolute_uri(link)},
            )
        return render(request, "accounts/claim_order.html", {"order": order, "sent": True})
    return render(request, "accounts/claim_order.html", {"order": order, "token": token})


@never_cache
@require_http_methods(["GET", "POST"])
def claim_order_confirm(request, number: int, token: str):
    """The emailed link: it proves the address, so the account is made (verified) and the order kept."""
    from orders.services import order_by_number

    email = services.claim_token_read(token=token, number=number)
    order = order_by_number(number)
    if email is None or order is None or order.email.strip().lower() != email:
        return render(request, "accounts/claim_order.html", {"expired": True}, status=404)
    here = request.get_full_path()
    if order.user_id is not None:
        return _in_an_account(request, order)
    if request.user.is_authenticated:
        if request.user.email.strip().lower() != email:
            return render(
                request, "accounts/claim_order.html", {"order": order, "mismatch": True}, status=403
            )
        return (
            _attach(request, order, request.user)
            if request.method == "POST"
            else render(
                request,
                "accounts/claim_order.html",
                {"order": order, "confirm": True, "action": here},
            )
        )
    if User.objects.filter(email__iexact=email).exists():
        messages.info(
            request,
            f"You already have an account with {order.email}. Sign in to add this order to it.",
        )
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': here})}")

    form = ClaimOrderForm(request.POST or None, email=email)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.account_create_verified(
                email=email, password=form.cleaned_data["password1"]
            )
        except services.EmailAlreadyRegistered:
            messages.info(
                request, "An account with this email address now exists. Sign in to add the order."
            )
            return redirect(f"{reverse('accounts:login')}?{urlencode({'next': here})}")
        AccountAdapter(request).login(request, user)  # signs in and brings the cart along
        return _attach(request, order, user)
    return render(
        request, "accounts/claim_order.html", {"order": order, "form": form, "set_password": True}
    )
