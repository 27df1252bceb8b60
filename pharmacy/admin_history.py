"""simple-history's admin, answering a malformed object id the way Django's own change page does.

Why: ``SimpleHistoryAdmin.history_view`` filters the history by the id from the URL as it is, so
``/admin/discounts/discountcode/%00/history/`` raised ``ValueError`` (a 500) where the change page
of the same id redirects to the list with "doesn't exist". Found by
``tests/security/test_hostile_requests.py``.
"""

from __future__ import annotations

from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from simple_history.admin import SimpleHistoryAdmin


class HistoryAdmin(SimpleHistoryAdmin):
    def history_view(self, request, object_id, extra_context=None):
        # Only the id's form is checked: the history of a deleted row stays viewable, as simple-history intends.
        try:
            self.opts.pk.to_python(unquote(object_id))
        except ValidationError:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_view(request, object_id, extra_context=extra_context)
