"""``django.contrib.admin`` with the shop's site as the default (its own module: an app config
is imported while the app registry is filling, before the site's imports may be)."""

from django.contrib.admin.apps import AdminConfig


class PharmacyAdminConfig(AdminConfig):
    """The default site, the one ``admin.site`` and ``@admin.register`` use, asks for the second
    factor (``pharmacy.admin_site``)."""

    default_site = "pharmacy.admin_site.PharmacyAdminSite"
