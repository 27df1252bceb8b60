"""The customer's pages, plus the ``accounts:`` names of allauth's pages (the templates' links).

allauth's own URLs (``allauth.urls``, included after these in ``pharmacy.urls``) serve the same
paths under their ``account_*`` names; the two views overridden here come first, so they win.
"""

from allauth.account import views as allauth_views
from django.db import transaction
from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    # One transaction, so a new account (user, address, outbox rows) commits once, as the "already
    # have an account" email does: the same work either way (accounts.auth_forms.SignupForm).
    path("signup/", transaction.atomic(allauth_views.signup), name="signup"),
    path("login/", allauth_views.login, name="login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("password/change/", allauth_views.password_change, name="password_change"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("2fa/totp/activate/", views.ActivateTOTPView.as_view(), name="activate_totp"),
    path("addresses/add/", views.address_add, name="address_add"),
    path("addresses/<int:pk>/edit/", views.address_edit, name="address_edit"),
    path("addresses/<int:pk>/delete/", views.address_delete, name="address_delete"),
    path("addresses/<int:pk>/default/", views.address_make_default, name="address_make_default"),
    path("health-profile/", views.patient_profile, name="patient_profile"),
    path("data.json", views.data_export, name="data_export"),
    path("close/", views.close_account, name="close_account"),
    path("claim/<int:number>/", views.claim_order, name="claim_order"),
    path(
        "claim/<int:number>/confirm/<str:token>/",
        views.claim_order_confirm,
        name="claim_order_confirm",
    ),
]
