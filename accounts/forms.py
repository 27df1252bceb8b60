from django import forms
from django.contrib.auth import password_validation

from pharmacy.us_address import ZipCodeField, zip_in_state_check

from .models import Address, PatientProfile, User


class AddressForm(forms.ModelForm):
    postal_code = ZipCodeField(
        label="ZIP code",
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "numeric"}),
    )

    class Meta:
        model = Address
        fields = ("full_name", "line1", "line2", "city", "state", "postal_code", "is_default")
        widgets = {
            "full_name": forms.TextInput(attrs={"autocomplete": "name"}),
            "line1": forms.TextInput(attrs={"autocomplete": "address-line1"}),
            "line2": forms.TextInput(attrs={"autocomplete": "address-line2"}),
            "city": forms.TextInput(attrs={"autocomplete": "address-level2"}),
            "state": forms.Select(attrs={"autocomplete": "address-level1"}),
            "postal_code": forms.TextInput(
                attrs={"autocomplete": "postal-code", "inputmode": "numeric"}
            ),
        }
        labels = {"is_default": "Use as my default shipping address"}

    def clean_state(self) -> str:
        return self.cleaned_data["state"].upper()

    def clean(self):
        """The ZIP code must lie in the state, as at checkout (``pharmacy.us_address``)."""
        cleaned = super().clean()
        zip_in_state_check(self, zip_field="postal_code")
        return cleaned


class PatientProfileForm(forms.ModelForm):
    class Meta:
        model = PatientProfile
        fields = (
            "date_of_birth",
            "phone",
            "allergies",
            "current_medicines",
            "prescriber_name",
            "prescriber_phone",
            "prescriber_licence",
        )
        widgets = {
            "date_of_birth": forms.DateInput(
                attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"
            ),
            "phone": forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
            "allergies": forms.Textarea(attrs={"rows": 3}),
            "current_medicines": forms.Textarea(attrs={"rows": 3}),
            "prescriber_phone": forms.TextInput(attrs={"inputmode": "tel"}),
        }


class CloseAccountForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.BooleanField(
        label="I understand that closing my account cannot be undone.",
        required=True,
    )

    def __init__(self, *args, user: User, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That password is not right.", code="password_incorrect")
        return password


class ClaimOrderForm(forms.Form):
    """The password of the account created for a guest order's (proven) email address."""

    password1 = forms.CharField(
        label="Choose a password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str, **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords do not match.")
        elif p1:
            try:
                password_validation.validate_password(p1, User(email=self.email))
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned
