"""US address rules shared by checkout (orders) and saved addresses (accounts): one of each.

The states come from django-localflavor (the 50 states and DC: where a US pharmacy ships), and
the ZIP code is localflavor's ``USZipCodeField`` everywhere. The one leniency, in both places:
nine bare digits (``122071234``, as people type ZIP+4) are read as ``12207-1234`` before
localflavor's check, so the checkout and the address book accept and store the same thing.
Lives in the project package because both apps need it and neither should import the other.

The ZIP code must also lie in the state chosen (``zip_state_problem``, from the offline USPS list
of the ``zipcodes`` package): the shop is licensed by state and charges the state's sales tax, so
both forms refuse an Anchorage ZIP sent to New York, or a New York ZIP entered as New Jersey
(``zip_in_state_check``, called from each form's ``clean``).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django import forms

from localflavor.us.forms import USZipCodeField
from localflavor.us.us_states import CONTIGUOUS_STATES, NON_CONTIGUOUS_STATES

US_STATES: list[tuple[str, str]] = sorted(
    ((code, str(name)) for code, name in CONTIGUOUS_STATES + NON_CONTIGUOUS_STATES),
    key=lambda item: item[1],
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


# --- ZIP and state agree ----------------------------------------------------------------------
# The ``zipcodes`` package ships the USPS ZIP list offline (no network, no database). Its lookup
# scans the whole list on every call; the map below is built from it once per process instead.


@cache
def _states_by_zip() -> tuple[dict[str, str], dict[str, frozenset[str]]]:
    import zipcodes

    by_zip: dict[str, str] = {}
    by_prefix: dict[str, set[str]] = {}
    for row in zipcodes.list_all():
        by_zip[row["zip_code"]] = row["state"]
        by_prefix.setdefault(row["zip_code"][:3], set()).add(row["state"])
    return by_zip, {prefix: frozenset(states) for prefix, states in by_prefix.items()}


def states_of_zip(zip_code: str) -> frozenset[str]:
    """The states a ZIP code (``12207`` or ``12207-1234``) belongs to: one for a known ZIP; for a ZIP
    newer than the list, the states of its three-digit area (USPS areas rarely cross a state
    line); empty when neither is known."""
    five = (zip_code or "").strip()[:5]
    if len(five) != 5 or not five.isascii() or not five.isdigit():
        return frozenset()
    by_zip, by_prefix = _states_by_zip()
    if five in by_zip:
        return frozenset({by_zip[five]})
    return by_prefix.get(five[:3], frozenset())


def zip_state_problem(*, zip_code: str, state: str) -> str:
    """Why this ZIP code cannot be in ``state`` (a message for the ZIP field), or ``""``."""
    states = states_of_zip(zip_code)
    if not states:
        return f"We cannot find the ZIP code {zip_code.strip()[:5]}. Please check it."
    if state in states:
        return ""
    names = " or ".join(sorted(STATE_NAMES.get(s, s) for s in states))
    chosen = STATE_NAMES.get(state, state)
    return f"The ZIP code {zip_code.strip()[:5]} is in {names}, not {chosen}. Please check the state and the ZIP code."


def zip_in_state_check(form: forms.Form, *, zip_field: str, state_field: str = "state") -> None:
    """In a form's ``clean``: put ``zip_state_problem`` on the ZIP field when both fields are valid."""
    state, zip_code = form.cleaned_data.get(state_field), form.cleaned_data.get(zip_field)
    if state and zip_code:
        problem = zip_state_problem(zip_code=zip_code, state=state)
        if problem:
            form.add_error(zip_field, problem)
