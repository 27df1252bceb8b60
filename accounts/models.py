"""Customers and staff: one user model, the email address is the login.

A customer's saved addresses and patient profile live here too. They are personal data the
customer may download or erase (``accounts.services``); orders keep their own snapshot, which is
why erasing an address never changes an order already placed.
"""

import datetime

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from pharmacy.prepared import PreparedQuery
from pharmacy.us_address import US_STATES  # django-localflavor's list

zip_code_validator = RegexValidator(
    r"^\d{5}(-\d{4})?$", "Enter a 5-digit ZIP code, or ZIP+4 such as 12207-1234."
)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, email: str):
        return self.get(email__iexact=email)

    def get(self, *args, **kwargs):
        """``get(pk=…)`` runs SQL built once per process; anything else goes the usual way.

        Why: Django's auth loads the signed-in user with exactly this call on every request
        (``ModelBackend.get_user``), and building its SQL afresh was a noticeable share of a cart
        page's CPU (docs/performance.md). Same answer and same exceptions as the ORM's ``get``
        (``tests/accounts/test_models.py``).
        """
        if (
            not args
            and len(kwargs) == 1
            and self._db is None
            and next(iter(kwargs)) in ("pk", "id")
        ):
            try:
                pk = self.model._meta.pk.to_python(next(iter(kwargs.values())))
            except ValidationError:
                pk = None
            if type(pk) is int and -(2**63) <= pk < 2**63:  # a bool is not an id
                found = _USER_BY_PK(pk=pk)
                if not found:
                    raise self.model.DoesNotExist(
                        f"{self.model._meta.object_name} matching query does not exist."
                    )
                return found[0]
        return super().get(*args, **kwargs)


class User(AbstractUser):
    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    # Set when the customer closes the account: the row stays (orders and prescriptions point at
    # it for the legal retention period) but carries no personal details any more.
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email


class Address(models.Model):
    """A saved US shipping address, used to prefill checkout."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="addresses")
    full_name = models.CharField("full name", max_length=150)
    line1 = models.CharField("address line 1", max_length=200)
    line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100)
    state = models.CharField(max_length=2, choices=US_STATES)
    postal_code = models.CharField("ZIP code", max_length=10, validators=[zip_code_validator])
    is_default = models.BooleanField("default shipping address", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "addresses"
        ordering = ("-is_default", "created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("user",),
                condition=Q(is_default=True),
                name="accounts_address_one_default_per_user",
            ),
            models.CheckConstraint(
                condition=Q(postal_code__regex=r"^[0-9]{5}(-[0-9]{4})?$"),
                name="accounts_address_zip_format",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name}, {self.line1}, {self.city} {self.state} {self.postal_code}"

    def as_checkout_dict(self) -> dict[str, str]:
        return {
            "full_name": self.full_name,
            "line1": self.line1,
            "line2": self.line2,
            "city": self.city,
            "state": self.state,
            "postal_code": self.postal_code,
        }


def validate_date_of_birth(value: datetime.date) -> None:
    today = timezone.localdate()
    if value > today:
        raise ValidationError("The date of birth cannot be in the future.")
    if value.year < today.year - 130:
        raise ValidationError("Please check the year of birth.")


class PatientProfile(models.Model):
    """What a pharmacist needs to know before dispensing; prefills the prescription step."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="patient_profile")
    date_of_birth = models.DateField(null=True, blank=True, validators=[validate_date_of_birth])
    phone = models.CharField("phone number", max_length=30, blank=True)
    allergies = models.TextField(
        blank=True, help_text="Medicine and other allergies, with the reaction if you know it."
    )
    current_medicines = models.TextField(
        "medicines you take now",
        blank=True,
        help_text="Include over-the-counter medicines, vitamins and herbal remedies.",
    )
    prescriber_name = models.CharField("prescriber name", max_length=150, blank=True)
    prescriber_phone = models.CharField("prescriber phone", max_length=30, blank=True)
    prescriber_licence = models.CharField(
        "prescriber licence or NPI number", max_length=40, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Patient profile of {self.user}"

    def as_prefill_dict(self) -> dict:
        return {
            "date_of_birth": self.date_of_birth,
            "phone": self.phone,
            "allergies": self.allergies,
            "current_medicines": self.current_medicines,
            "prescriber_name": self.prescriber_name,
            "prescriber_phone": self.prescriber_phone,
            "prescriber_licence": self.prescriber_licence,
        }


class UsedTotpCode(models.Model):
    """A TOTP code that has been accepted once, kept while it could still be accepted again.

    allauth remembers used codes in the cache only; while Redis is down each web process answers
    from its own memory, so one code could sign in once per process. The unique constraint makes
    the database refuse the second use whatever the cache says (``accounts.totp_codes``).
    Rows older than the code's validity window are pruned on the next use. The code itself is
    not stored: a keyed digest of it is enough to recognise it.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    code_digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "code_digest"], name="accounts_totp_code_used_once"
            ),
        ]


# The user by id, for ``UserManager.get`` (the auth's per-request user load).
_USER_BY_PK = PreparedQuery(lambda pk: User._base_manager.filter(pk=pk), "pk")
