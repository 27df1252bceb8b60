"""US address rules shared by checkout (orders) and saved addresses (accounts): one of each.

The states come from django-localflavor (the 50 states and DC: where a US pharmacy ships), and
the ZIP code is localflavor's ``USZipCodeField`` everywhere. The one leniency, in both places:
nine bare digits (``122071234``, as people type ZIP+4) are read as ``12207-1234`` before
localflavor's check, so the checkout and the address book accept and store the same thing.
Lives in the project package because both apps need it and neither should import the other.
"""
from __future__ import annotations

from localflavor.us.forms import USZipCodeField
from localflavor.us.us_states import CONTIGUOUS_STATES, NON_CONTIGUOUS_STATES

US_STATES: list[tuple[str, str]] = sorted(
    ((code, str(name)) for code, name in CONTIGUOUS_STATES + NON_CONTIGUOUS_STATES), key=lambda item: item[1]
)
STATE_NAMES: dict[str, str] = dict(US_STATES)
ZIP_MESSAGE = "Enter a 5-digit ZIP code, or ZIP+4 such as 12207-1234."


class ZipCodeField(USZipCodeField):
    default_error_messages = {"invalid": ZIP_MESSAGE}

    def to_python(self, value):
        value = super().to_python(value)
        if value and len(value) == 9 and value.isdigit():
            return f"{value[:5]}-{value[5:]}"
        return value
