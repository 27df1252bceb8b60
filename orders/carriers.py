"""Shipping carriers: the public tracking page of the ones staff type in most often.

Part of fulfilment (``orders.fulfilment`` marks an order shipped); its own module so the order's
page and its shipped email can link a parcel without importing the shipping workflow. A new
carrier is one line here.
"""

from __future__ import annotations

from urllib.parse import quote

#: Others get no link: the email and the page show the number alone.
TRACKING_URLS = {
    "ups": "https://www.ups.com/track?tracknum={}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
    "dhl": "https://www.dhl.com/us-en/home/tracking/tracking-express.html?tracking-id={}",
}


def tracking_url(*, carrier: str, number: str) -> str:
    template = TRACKING_URLS.get("".join(carrier.split()).casefold())
    return template.format(quote(number.strip(), safe="")) if template and number.strip() else ""
