"""Message pages: the patient's under ``/accounts/`` (no-store like every account page), the
pharmacists' under ``/staff/`` (the second factor's prefix)."""

from django.urls import path

from . import message_views

app_name = "messaging"

urlpatterns = [
    path("accounts/messages/", message_views.thread, name="thread"),
    path("staff/messages/", message_views.inbox, name="inbox"),
    path("staff/messages/<int:patient_id>/", message_views.staff_thread, name="staff_thread"),
]
