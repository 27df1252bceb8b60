"""simple-history's admin, answering a malformed object id the way Django's own change page does.

Why: ``SimpleHistoryAdmin.history_view`` filters the history by the id from the URL as it is, so
``/admin/discounts/discountcode/%00/history/`` raised ``ValueError`` (a 500) where the change page
of the same id redirects to the list with "doesn't exist". Found by
``tests/security/test_hostile_requests.py``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin


def object_missing_redirect(model_admin, request, object_id: str) -> HttpResponseRedirect:
    """What Django's change page answers for an id with no row (its helper for it is private):
    a warning naming the id, then the admin index."""
    model_admin.message_user(
        request,
        f"{model_admin.opts.verbose_name.capitalize()} with ID “{unquote(object_id)}” doesn’t exist. "
        "Perhaps it was deleted?",
        messages.WARNING,
    )
    return HttpResponseRedirect(reverse("admin:index", current_app=model_admin.admin_site.name))


class HistoryAdmin(SimpleHistoryAdmin):
    def history_view(self, request, object_id, extra_context=None):
        # Only the id's form is checked: the history of a deleted row stays viewable, as simple-history intends.
        try:
            self.opts.pk.to_python(unquote(object_id))
        except ValidationError:
            return object_missing_redirect(self, request, object_id)
        return super().history_view(request, object_id, extra_context=extra_context)
