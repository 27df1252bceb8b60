import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .forms import (
    AddressForm,
    ClaimOrderForm,
    CloseAccountForm,
    EmailAuthenticationForm,
    PatientProfileForm,
    SignUpForm,
)
from .models import Address, PatientProfile, User

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _merge_anonymous_cart(request, user) -> None:
    """The cart someone filled before signing in follows them into their account."""
    from cart.services import cart_merge_into_user

    cart_merge_into_user(request=request, user=user)


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


# --- Signing in and out ---------------------------------------------------------------------

class SignInView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        _merge_anonymous_cart(self.request, form.get_user())
        return response


class SignOutView(auth_views.LogoutView):
    http_method_names = ["post", "options"]

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have signed out.")
        return response


@never_cache
@require_http_methods(["GET", "POST"])
def sign_up(request):
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_sign_up(
                email=form.cleaned_data["email"], password=form.cleaned_data["password1"]
            )
        except services.EmailAlreadyRegistered:
            form.add_error("email", "An account with this email address already exists.")
        else:
            login(request, user, backend=MODEL_BACKEND)
            _merge_anonymous_cart(request, user)
            messages.success(request, "Welcome! Your account is ready.")
            return redirect(_safe_next(request, reverse("accounts:dashboard")))
    return render(request, "registration/signup.html", {"form": form, "next": request.GET.get("next", "")})


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        self.extra_email_context = {
            "pharmacy_name": settings.PHARMACY_NAME,
            "pharmacy_phone": settings.PHARMACY_PHONE,
        }
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


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
            user=request.user, address=form.save(commit=False), make_default=form.cleaned_data["is_default"]
        )
        messages.success(request, "Address saved.")
        return redirect(_safe_next(request, reverse("accounts:dashboard") + "#addresses"))
    return render(request, "accounts/address_form.html", {"form": form, "adding": True})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def address_edit(request, pk: int):
    address = get_object_or_404(Address, pk=pk, user=request.user)
    form = AddressForm(request.POST or None, instance=address)
    if request.method == "POST" and form.is_valid():
        services.address_save(
            user=request.user, address=form.save(commit=False), make_default=form.cleaned_data["is_default"]
        )
        messages.success(request, "Address updated.")
        return redirect(reverse("accounts:dashboard") + "#addresses")
    return render(request, "accounts/address_form.html", {"form": form, "address": address, "adding": False})


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
    profile = PatientProfile.objects.filter(user=request.user).first() or PatientProfile(user=request.user)
    form = PatientProfileForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your health details are saved.")
        return redirect(_safe_next(request, reverse("accounts:dashboard") + "#profile"))
    return render(request, "accounts/patient_profile_form.html", {"form": form})


# --- Privacy --------------------------------------------------------------------------------

@never_cache
@login_required
@require_http_methods(["GET"])
def data_export(request):
    data = services.account_export_data(user=request.user)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2), content_type="application/json; charset=utf-8"
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

def _claimable_order(request, number: int):
    """The order named in the link, if the signed token proves the visitor holds its link."""
    from orders.models import Order
    from orders.services import order_token_is_valid

    token = request.POST.get("t") or request.GET.get("t", "")
    order = Order.objects.filter(number=number).first()
    if order is None or not token or not order_token_is_valid(order=order, token=token):
        raise Http404("This link is not valid. Open the link from your order confirmation again.")
    return order, token


@never_cache
@require_http_methods(["GET", "POST"])
def claim_order(request, number: int):
    """A guest keeps an order by creating an account for the order's email (or signing in to it)."""
    order, token = _claimable_order(request, number)
    here = f"{reverse('accounts:claim_order', kwargs={'number': number})}?{urlencode({'t': token})}"
    if order.user_id is not None:
        if request.user.is_authenticated and order.user_id == request.user.pk:
            return redirect(order.get_absolute_url())
        messages.info(request, "This order is already in an account. Sign in to see it.")
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': order.get_absolute_url()})}")

    if request.user.is_authenticated:
        if request.user.email.lower() != order.email.lower():
            return render(request, "accounts/claim_order.html", {"order": order, "mismatch": True}, status=403)
        if request.method == "POST":
            try:
                services.order_attach_to_user(order=order, user=request.user)
            except services.OrderAlreadyClaimed:
                messages.error(request, "This order is already in another account.")
                return redirect("accounts:dashboard")
            messages.success(request, f"Order {order.number} is now in your account.")
            return redirect(reverse("accounts:dashboard") + "#orders")
        return render(request, "accounts/claim_order.html", {"order": order, "token": token, "confirm": True})

    if User.objects.filter(email__iexact=order.email).exists():
        messages.info(request, f"You already have an account with {order.email}. Sign in to add this order to it.")
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': here})}")

    form = ClaimOrderForm(request.POST or None, email=order.email)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.order_claim_with_new_account(order=order, password=form.cleaned_data["password1"])
        except services.EmailAlreadyRegistered:
            messages.info(request, "An account with this email address now exists. Sign in to add the order.")
            return redirect(f"{reverse('accounts:login')}?{urlencode({'next': here})}")
        except services.OrderAlreadyClaimed:
            messages.error(request, "This order is already in an account.")
            return redirect("accounts:login")
        login(request, user, backend=MODEL_BACKEND)
        _merge_anonymous_cart(request, user)
        messages.success(request, f"Your account is ready and order {order.number} is in it.")
        return redirect(reverse("accounts:dashboard") + "#orders")
    return render(request, "accounts/claim_order.html", {"order": order, "token": token, "form": form})
