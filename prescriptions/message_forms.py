"""The one form of the message pages: the text, what it is about (optional), a one-time key."""

from __future__ import annotations

import uuid

from django import forms

from .messages import MAX_LENGTH


class MessageForm(forms.Form):
    """``orders`` and ``prescriptions`` are the patient's own: the only things a message may name.

    ``about`` is ``order:<number>`` or ``rx:<id>``; anything else is refused by the choice field.
    """

    body = forms.CharField(
        label="Your message",
        max_length=MAX_LENGTH,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    about = forms.ChoiceField(label="About", required=False)
    submission_key = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, orders=(), prescriptions=(), body_label: str = "", **kwargs):
        kwargs.setdefault("initial", {}).setdefault("submission_key", uuid.uuid4())
        super().__init__(*args, **kwargs)
        if body_label:
            self.fields["body"].label = body_label
        self._orders = {str(order.number): order for order in orders}
        self._prescriptions = {str(record.pk): record for record in prescriptions}
        self.fields["about"].choices = [
            ("", "Nothing in particular"),
            *[
                (f"order:{number}", f"Order {number} ({order.created_at:%b %-d, %Y})")
                for number, order in self._orders.items()
            ],
            *[
                (f"rx:{pk}", f"Prescription: {record.medicine} {record.strength}")
                for pk, record in self._prescriptions.items()
            ],
        ]

    def clean(self):
        cleaned = super().clean()
        if "submission_key" in self.errors:  # hidden: say it where the writer can read it
            raise forms.ValidationError("This form is out of date: please send your message again.")
        return cleaned

    def linked(self) -> dict:
        """``order`` and ``prescription`` for the service, from the chosen ``about``."""
        kind, _, key = (self.cleaned_data.get("about") or "").partition(":")
        return {
            "order": self._orders.get(key) if kind == "order" else None,
            "prescription": self._prescriptions.get(key) if kind == "rx" else None,
        }
