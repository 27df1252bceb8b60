"""The prescription admin opens an uploaded copy only through the permission-checked view."""

import uuid
from types import SimpleNamespace

from django.contrib import admin
from django.urls import reverse

from prescriptions.models import Prescription


def test_the_copy_opens_in_a_new_tab_through_the_checked_view():
    model_admin = admin.site._registry[Prescription]
    pk = uuid.uuid4()
    url = reverse("prescriptions:prescription_file", args=[pk])
    html = model_admin.copy_link(SimpleNamespace(pk=pk, has_file=True))
    assert html.strip() == f'<a href="{url}" target="_blank" rel="noopener">Open</a>'
    assert model_admin.copy_link(SimpleNamespace(pk=pk, has_file=False)) == (
        "None: obtain it from the prescriber."
    )
