"""sitemap.xml: the public pages search engines may index (published products only)."""

from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from .models import Product


class StaticPagesSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.6

    def items(self) -> list[str]:
        return ["catalog:home", "catalog:product_list"]

    def location(self, item: str) -> str:
        return reverse(item)


class ProductSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.8

    def items(self):
        return Product.objects.published().order_by("name", "pk").only("slug", "updated_at")

    def lastmod(self, product: Product):
        return product.updated_at


SITEMAPS = {"static": StaticPagesSitemap, "products": ProductSitemap}
