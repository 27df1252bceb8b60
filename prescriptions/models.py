"""Prescriptions' models (moving here from ``orders``, issue 23)."""
