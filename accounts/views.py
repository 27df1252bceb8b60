import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import services
from .forms import AddressForm, CloseAccountForm, EmailAuthenticationForm, PatientProfileForm, SignUpForm
from .models import Address, PatientProfile

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
