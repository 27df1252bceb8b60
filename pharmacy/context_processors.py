from django.conf import settings


def pharmacy(request) -> dict:
    """The pharmacy's legal identity, shown in every page's footer."""
    return {
        "pharmacy": {
            "name": settings.PHARMACY_NAME,
            "licence_number": settings.PHARMACY_LICENCE_NUMBER,
            "pharmacist_in_charge": settings.PHARMACIST_IN_CHARGE,
            "phone": settings.PHARMACY_PHONE,
            "email": settings.PHARMACY_EMAIL,
            "address": settings.PHARMACY_ADDRESS,
        }
    }
