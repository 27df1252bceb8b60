"""Prescriptions' models (moving here from ``orders``, issue 23)."""

from .message_models import (  # noqa: F401  (messages with a pharmacist, issue 25)
    MessageKind,
    MessageSender,
    MessageThread,
    PatientMessage,
)
