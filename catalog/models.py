"""The catalog: medicines, their strengths and the packs each strength is sold in.

Prices live on ``PackageTier`` (what a pack costs) and ``Dosage`` (the unrounded list price per
pill that savings are measured against). All derived figures come from ``catalog.pricing``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import connections, models, router, transaction
from django.db.models import F, Q, Value
from django.db.models.expressions import CombinedExpression
from django.urls import reverse
from djmoney.models.fields import MoneyField
from djmoney.models.validators import MinMoneyValidator
from simple_history.models import HistoricalRecords

from . import page_cache, pricing
from .page_cache import CatalogModel, CatalogQuerySet


class LegalClass(models.TextChoices):
    GENERAL_SALE = "general_sale", "General sale"
    PHARMACY = "pharmacy", "Pharmacy only"
    PRESCRIPTION = "prescription", "Prescription only"
    CONTROLLED = "controlled", "Controlled substance"


class DosageForm(models.TextChoices):
    TABLET = "tablet", "Tablet"
    CAPSULE = "capsule", "Capsule"
    SOFTGEL = "softgel", "Soft gel capsule"
    CHEWABLE = "chewable", "Chewable tablet"
    ORAL_SOLUTION = "oral_solution", "Oral solution"
    LOZENGE = "lozenge", "Lozenge"


class StrengthUnit(models.TextChoices):
    MCG = "mcg", "mcg"
    MG = "mg", "mg"
    G = "g", "g"


MICROGRAMS_PER_UNIT = {StrengthUnit.MCG: 1, StrengthUnit.MG: 1_000, StrengthUnit.G: 1_000_000}


class Category(CatalogModel):
    page_owner = None  # its name and count show on every listing, its name on product pages

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("position", "name")
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"{reverse('catalog:product_list')}?category={self.slug}"


class ProductQuerySet(CatalogQuerySet):
    def published(self) -> ProductQuerySet:
        return self.filter(is_published=True)


class Product(CatalogModel):
    class Kind(models.TextChoices):
        GENERIC = "generic", "Generic"
        BRAND = "brand", "Brand"

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    active_ingredient = models.CharField(max_length=200)
    kind = models.CharField(
        "brand or generic", max_length=10, choices=Kind.choices, default=Kind.GENERIC
    )
    brand_names = models.CharField(
        max_length=200, blank=True, help_text="Other names the medicine is sold under."
    )
    drug_class = models.CharField(max_length=200, blank=True)
    dosage_form = models.CharField(
        max_length=20, choices=DosageForm.choices, default=DosageForm.TABLET
    )
    legal_class = models.CharField(max_length=20, choices=LegalClass.choices)
    summary = models.CharField(
        max_length=300, help_text="One or two plain sentences; also the page's meta description."
    )
    indications = models.CharField(
        max_length=300,
        blank=True,
        help_text="What it treats, comma-separated; searched by customers.",
    )
    is_published = models.BooleanField(default=False)
    is_featured = models.BooleanField(default=False)
    max_pills_per_order = models.PositiveIntegerField(
        null=True, blank=True, help_text="Optional limit on the pills of this product in one order."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: MIN(price / quantity) over the active tiers, NULL without one: the listing's price order.
    #: Kept by the tier and dosage writes (``catalog.lowest_prices``); never edited by hand.
    lowest_pill_price = models.DecimalField(
        max_digits=24, decimal_places=12, null=True, blank=True, editable=False
    )

    objects = ProductQuerySet.as_manager()
    page_owner = "pk"

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=Q(max_pills_per_order__isnull=True) | Q(max_pills_per_order__gt=0),
                name="catalog_product_max_pills_positive",
            ),
        ]
        indexes = [
            # The listing: published products by name, a page at a time (also a late page).
            models.Index(
                fields=["name", "id"],
                condition=Q(is_published=True),
                name="catalog_product_listing_idx",
            ),
            # A category's listing, in the same order: a page of a large category without sorting it.
            models.Index(
                fields=["category", "name", "id"],
                condition=Q(is_published=True),
                name="catalog_product_cat_idx",
            ),
            # The listing by lowest price per pill (NULLS LAST: PostgreSQL's default for ASC), a page at a time.
            models.Index(
                fields=["lowest_pill_price", "name", "id"],
                condition=Q(is_published=True),
                name="catalog_product_price_idx",
            ),
            # The home page's few featured products, by name, without reading every product.
            models.Index(
                fields=["name"],
                condition=Q(is_published=True, is_featured=True),
                name="catalog_product_featured_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:product_detail", kwargs={"slug": self.slug})

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_slug = instance.__dict__.get("slug")
        return instance

    def page_change(self, **kwargs) -> dict:
        """Its page, under its slug as loaded too (a page left at an old address is retired)."""
        change = super().page_change(**kwargs)
        if "slugs" not in change and not change.get("everything"):
            change["slugs"] = {self.slug, getattr(self, "_loaded_slug", None)} - {None}
        return change

    @property
    def requires_prescription(self) -> bool:
        return self.legal_class == LegalClass.PRESCRIPTION

    @property
    def is_controlled(self) -> bool:
        return self.legal_class == LegalClass.CONTROLLED

    @property
    def can_be_ordered_online(self) -> bool:
        """Controlled substances are never sold online, whatever else is set."""
        return self.is_published and not self.is_controlled


class _LoadedValues:
    """Remembers the fields a lowest price depends on as read, so a save can tell what it changed."""

    _price_fields: tuple[str, ...] = ()

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        loaded = instance.__dict__
        if all(name in loaded for name in cls._price_fields):
            instance._loaded_price_values = tuple(
                _plain(loaded[name]) for name in cls._price_fields
            )
        return instance

    def _price_values(self) -> tuple:
        return tuple(_plain(self.__dict__.get(name)) for name in self._price_fields)


def _plain(value):
    return getattr(
        value, "amount", value
    )  # Money -> its amount (the currency is a field of its own)


class DosageQuerySet(CatalogQuerySet):
    """Moving or deleting dosages recomputes their products' lowest price (``catalog.lowest_prices``)."""

    def update(self, **kwargs):
        if not lowest_price_touched(kwargs, LOWEST_PRICE_DOSAGE_FIELDS):
            return super().update(**kwargs)
        new = kwargs.get("product", kwargs.get("product_id"))
        with lowest_price_kept(
            using=self.db, dosages=self, product_ids=[getattr(new, "pk", new)] if new else []
        ):
            return self.update_unretired(**kwargs)

    def delete(self):
        with lowest_price_kept(using=self.db, dosages=self):
            return self.delete_unretired()

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        if not lowest_price_touched(fields, LOWEST_PRICE_DOSAGE_FIELDS):
            return super().bulk_update(objs, fields, *args, **kwargs)
        with lowest_price_kept(
            using=self.db,
            product_ids={o.product_id for o in objs},
            dosages=self.model._base_manager.filter(pk__in=[o.pk for o in objs]),
        ):
            return self.bulk_update_unretired(objs, fields, *args, **kwargs)


class Dosage(_LoadedValues, CatalogModel):
    _price_fields = ("product_id",)
    page_owner = "product"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="dosages")
    strength = models.CharField(max_length=40, help_text='As printed on the pack, e.g. "10mg".')
    strength_value = models.DecimalField(
        max_digits=10, decimal_places=3, validators=[MinValueValidator(Decimal("0.001"))]
    )
    strength_unit = models.CharField(
        max_length=4, choices=StrengthUnit.choices, default=StrengthUnit.MG
    )
    strength_micrograms = models.GeneratedField(
        expression=models.Case(
            models.When(strength_unit=StrengthUnit.G, then=models.F("strength_value") * 1_000_000),
            models.When(strength_unit=StrengthUnit.MG, then=models.F("strength_value") * 1_000),
            default=models.F("strength_value"),
        ),
        output_field=models.DecimalField(max_digits=20, decimal_places=3),
        db_persist=True,
    )
    list_price_per_pill = MoneyField(
        max_digits=12,
        decimal_places=5,
        default_currency="USD",
        validators=[MinMoneyValidator(Decimal("0.00001"))],
        help_text="Unrounded list price of one pill; savings are measured against it.",
    )

    history = HistoricalRecords(excluded_fields=["strength_micrograms"])
    objects = DosageQuerySet.as_manager()

    class Meta:
        ordering = ("product", "strength_micrograms")
        constraints = [
            models.UniqueConstraint(
                fields=("product", "strength"), name="catalog_dosage_unique_strength"
            ),
            models.CheckConstraint(
                condition=Q(strength_value__gt=0), name="catalog_dosage_strength_positive"
            ),
            models.CheckConstraint(
                condition=Q(list_price_per_pill__gt=0), name="catalog_dosage_list_price_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} {self.strength}"

    def save(self, *args, **kwargs):
        """Moved to another product: both products' lowest price, in the same transaction."""
        loaded = getattr(self, "_loaded_price_values", None)
        if (
            self._state.adding
            or loaded == self._price_values()
            or not lowest_price_touched(kwargs.get("update_fields"), LOWEST_PRICE_DOSAGE_FIELDS)
        ):
            return super().save(*args, **kwargs)
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        old = [loaded[0]] if loaded else []
        with lowest_price_kept(
            using=using,
            product_ids=[self.product_id, *old],
            dosages=None if loaded else Dosage._base_manager.filter(pk=self.pk),
        ):
            result = super().save(*args, **kwargs)
        self._loaded_price_values = self._price_values()
        return result

    def delete(self, *args, **kwargs):
        """Its tiers go with it (cascade): the product's lowest price, in the same transaction."""
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with lowest_price_kept(using=using, dosages=Dosage._base_manager.filter(pk=self.pk)):
            return super().delete(*args, **kwargs)


class PackageTierQuerySet(CatalogQuerySet):
    """Writes of price, quantity, active flag or dosage recompute the products' lowest price
    (``catalog.lowest_prices``); stock moves do not."""

    def active(self) -> PackageTierQuerySet:
        return self.filter(is_active=True)

    def with_product(self) -> PackageTierQuerySet:
        return self.select_related("dosage__product__category")

    def update(self, **kwargs):
        if set(kwargs) == {"stock"}:
            return self._stock_update(kwargs["stock"])
        if not lowest_price_touched(kwargs, LOWEST_PRICE_TIER_FIELDS):
            return super().update(**kwargs)
        new = kwargs.get("dosage", kwargs.get("dosage_id"))
        with lowest_price_kept(
            using=self.db,
            tiers=self,
            dosages=Dosage._base_manager.filter(pk=getattr(new, "pk", new)) if new else None,
        ):
            return self.update_unretired(**kwargs)

    def delete(self):
        with lowest_price_kept(using=self.db, tiers=self):
            return self.delete_unretired()

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        if not objs:
            return super().bulk_create(objs, *args, **kwargs)
        with lowest_price_kept(
            using=self.db, dosages=Dosage._base_manager.filter(pk__in={o.dosage_id for o in objs})
        ):
            return self.bulk_create_unretired(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        if objs and set(fields) == {"stock"}:
            return self._stock_bulk_update(objs, *args, **kwargs)
        if not objs or not lowest_price_touched(fields, LOWEST_PRICE_TIER_FIELDS):
            return super().bulk_update(objs, fields, *args, **kwargs)
        with lowest_price_kept(
            using=self.db,
            tiers=self.model._base_manager.filter(pk__in=[o.pk for o in objs]),
            dosages=Dosage._base_manager.filter(pk__in={o.dosage_id for o in objs}),
        ):
            return self.bulk_update_unretired(objs, fields, *args, **kwargs)

    def _locked_stock(self) -> list[tuple[int, int | None, bool, int]]:
        """(id, stock, active, dosage id) of these packs, locked until the transaction ends: no other
        stock move can slip between this read and the write (so none goes unseen)."""
        return list(
            self.select_for_update(of=("self",))
            .order_by("pk")
            .values_list("pk", "stock", "is_active", "dosage_id")
        )

    def _stock_update(self, value) -> int:
        """A stock move (checkout takes packs, a cancellation gives them back): it changes what a
        page shows only when an active pack goes out of stock or back into it, and retires the
        page of that pack's product alone. One locking read of the rows the update locks anyway."""
        with transaction.atomic(using=self.db, savepoint=False):
            rows = self._locked_stock()
            updated = self.update_unretired(stock=value)
        page_cache.catalog_changed(
            using=self.db,
            dosage_ids={
                dosage
                for _pk, stock, active, dosage in rows
                if active and stock_flips(stock, stock_after(stock, value))
            },
        )
        return updated

    def _stock_bulk_update(self, objs, *args, **kwargs) -> int:
        new = {obj.pk: obj.stock for obj in objs}
        with transaction.atomic(using=self.db, savepoint=False):
            rows = self.model._default_manager.using(self.db).filter(pk__in=new)._locked_stock()
            updated = self.bulk_update_unretired(objs, ["stock"], *args, **kwargs)
        page_cache.catalog_changed(
            using=self.db,
            dosage_ids={
                dosage
                for pk, stock, active, dosage in rows
                if active and stock_flips(stock, new[pk])
            },
        )
        return updated


#: ``stock_after`` could not tell (the update's expression is not a plain count or ``F ± n``).
UNKNOWN_STOCK = object()


def in_stock(stock: int | None) -> bool:
    """A pack can be bought: stock not tracked (None) or some left."""
    return stock is None or stock > 0


def stock_after(stock: int | None, value):
    """What ``update(stock=value)`` leaves in a row holding ``stock``, for the forms stock moves
    take (a count, None, ``F("stock") + n``, ``F("stock") - n``); ``UNKNOWN_STOCK`` otherwise."""
    if value is None or isinstance(value, int):
        return value
    if (
        isinstance(value, CombinedExpression)
        and isinstance(value.lhs, F)
        and value.lhs.name == "stock"
        and isinstance(value.rhs, Value)
        and isinstance(value.rhs.value, int)
        and value.connector in (CombinedExpression.ADD, CombinedExpression.SUB)
    ):
        if stock is None:
            return None  # NULL plus anything stays NULL: still not tracked
        delta = value.rhs.value
        return stock + delta if value.connector == CombinedExpression.ADD else stock - delta
    return UNKNOWN_STOCK


def stock_flips(before: int | None, after) -> bool:
    """Whether a pack went out of stock or back into it (or might have)."""
    return after is UNKNOWN_STOCK or in_stock(before) != in_stock(after)


class PackageTier(_LoadedValues, CatalogModel):
    _price_fields = ("price", "price_currency", "quantity", "is_active", "dosage_id")
    page_owner = "dosage"

    dosage = models.ForeignKey(Dosage, on_delete=models.CASCADE, related_name="tiers")
    quantity = models.PositiveIntegerField("pills in pack")
    price = MoneyField(
        max_digits=10,
        decimal_places=2,
        default_currency="USD",
        validators=[MinMoneyValidator(Decimal("0.01"))],
    )
    sku = models.CharField("SKU", max_length=40, unique=True)
    is_active = models.BooleanField("active", default=True)
    position = models.PositiveSmallIntegerField(default=0)
    stock = models.PositiveIntegerField(
        null=True, blank=True, help_text="Packs in stock. Leave empty when stock is not tracked."
    )

    history = HistoricalRecords()
    objects = PackageTierQuerySet.as_manager()

    class Meta:
        ordering = ("dosage", "position", "quantity")
        constraints = [
            models.UniqueConstraint(
                fields=("dosage", "quantity"), name="catalog_tier_unique_quantity"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="catalog_tier_quantity_positive"
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="catalog_tier_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.dosage} × {self.quantity}"

    def save(self, *args, **kwargs):
        """A new pack, or a changed price, size, active flag or strength: the lowest price of its
        product (and of the one it left), in the same transaction. A stock-only save pays nothing."""
        loaded = getattr(self, "_loaded_price_values", None)
        if not self._state.adding and (
            loaded == self._price_values()
            or not lowest_price_touched(kwargs.get("update_fields"), LOWEST_PRICE_TIER_FIELDS)
        ):
            return super().save(*args, **kwargs)
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        old_dosage = [loaded[-1]] if loaded else []
        with lowest_price_kept(
            using=using,
            dosages=Dosage._base_manager.filter(pk__in=[self.dosage_id, *old_dosage]),
            tiers=None
            if loaded or self._state.adding
            else PackageTier._base_manager.filter(pk=self.pk),
        ):
            result = super().save(*args, **kwargs)
        self._loaded_price_values = self._price_values()
        return result

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        if "stock" in instance.__dict__:
            instance._loaded_stock = instance.__dict__["stock"]
        return instance

    def page_change(self, *, update_fields=None, **kwargs) -> dict:
        """A save of the stock alone retires nothing unless the pack went out of stock or back."""
        if (
            update_fields is not None
            and set(update_fields) <= {"stock"}
            and hasattr(self, "_loaded_stock")
        ):
            flips = self.is_active and stock_flips(self._loaded_stock, self.stock)
            self._loaded_stock = self.stock
            if not flips:
                return {}
        return super().page_change(update_fields=update_fields, **kwargs)

    def delete(self, *args, **kwargs):
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with lowest_price_kept(using=using, tiers=PackageTier._base_manager.filter(pk=self.pk)):
            return super().delete(*args, **kwargs)

    @property
    def per_pill_price(self):
        return pricing.tier_per_pill_price(price=self.price, quantity=self.quantity)

    @property
    def list_price(self):
        return pricing.tier_list_price(
            list_price_per_pill=self.dosage.list_price_per_pill, quantity=self.quantity
        )

    @property
    def savings_percent(self) -> int:
        return pricing.tier_savings_percent(price=self.price, list_price=self.list_price)


# --- Patient information: structured, edited by staff, rendered as sections ------------------


class InfoSection(CatalogModel):
    """A prose section of the patient information (introduction, how it works, pregnancy …)."""

    page_owner = "product"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="info_sections")
    heading = models.CharField(max_length=120)
    body = models.TextField(help_text="Plain text; blank lines separate paragraphs.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("product", "position", "id")

    def __str__(self) -> str:
        return self.heading


class DosingGuideline(CatalogModel):
    """One row of the dosing table."""

    page_owner = "product"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="dosing_guidelines")
    indication = models.CharField(max_length=200)
    starting_dose = models.CharField(max_length=200)
    titration = models.CharField(max_length=200, blank=True)
    maximum_dose = models.CharField(max_length=200, blank=True)
    administration = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("product", "position", "id")

    def __str__(self) -> str:
        return self.indication


class SafetyNote(CatalogModel):
    """A contraindication, interaction or side effect, each a short item with optional detail."""

    page_owner = "product"

    class Kind(models.TextChoices):
        CONTRAINDICATION = "contraindication", "Contraindication"
        INTERACTION = "interaction", "Interaction"
        SIDE_EFFECT = "side_effect", "Side effect"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="safety_notes")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("product", "kind", "position", "id")

    def __str__(self) -> str:
        return self.title


class FAQ(CatalogModel):
    page_owner = "product"
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="faqs")
    question = models.CharField(max_length=300)
    answer = models.TextField()
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("product", "position", "id")
        verbose_name = "FAQ"
        verbose_name_plural = "FAQs"

    def __str__(self) -> str:
        return self.question


# --- The stored lowest per-pill price (``Product.lowest_pill_price``), kept by the writes above ---
#
# Why and how: see ``catalog.lowest_prices``. These pieces live here, beside the tier and dosage
# writes that call them, because they read these models' tables: kept in their own module they
# made ``models`` and that module import each other.

#: The tier fields the minimum depends on (with the money field's currency column).
LOWEST_PRICE_TIER_FIELDS = frozenset(
    {"price", "price_currency", "quantity", "is_active", "dosage", "dosage_id"}
)
#: The dosage fields it depends on (a dosage moved to another product).
LOWEST_PRICE_DOSAGE_FIELDS = frozenset({"product", "product_id"})


def lowest_price_touched(fields: Iterable[str] | None, relevant: frozenset[str]) -> bool:
    """Whether a write of ``fields`` (None: all of them) can change a lowest price."""
    return fields is None or bool(relevant.intersection(fields))


def lowest_price_lock(
    *, using: str, product_ids: Iterable[int] = (), dosages=None, tiers=None
) -> list[int]:
    """Lock the products named, those of the ``dosages`` and of the ``tiers`` (querysets); their ids.

    One statement; the querysets become subqueries (no rows travel to Python).
    """
    condition = Q(pk__in=list(product_ids))
    if dosages is not None:
        condition |= Q(pk__in=dosages.order_by().values("product_id"))
    if tiers is not None:
        condition |= Q(
            pk__in=Dosage.objects.filter(pk__in=tiers.order_by().values("dosage_id")).values(
                "product_id"
            )
        )
    return list(
        Product._base_manager.using(using)
        .filter(condition)
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )


@contextmanager
def lowest_price_kept(
    *, using: str, product_ids: Iterable[int] = (), dosages=None, tiers=None
) -> Iterator[None]:
    """Around a write that can change lowest prices: lock the products (``lowest_price_lock``'s
    arguments) before it and recompute them after it, in one transaction (no savepoint: no extra
    statements inside an outer one). If the write raises, nothing is recomputed and it rolls back.
    """
    with transaction.atomic(using=using, savepoint=False):
        ids = lowest_price_lock(using=using, product_ids=product_ids, dosages=dosages, tiers=tiers)
        yield
        lowest_price_recompute(using=using, product_ids=ids)


def lowest_price_recompute(*, using: str, product_ids: list[int]) -> None:
    """Set the stored minimum of these (locked) products from their tiers: one UPDATE.

    Raw SQL, not ``Product.objects.update``: that would retire the product counts and listing
    indexes (the set of products is unchanged); only the price order's memo (``memoize(...,
    prices_only=True)``) and the pages are retired.
    """
    if not product_ids:
        return
    connection = connections[using]
    table, column, pk = lowest_price_names(connection)
    placeholders = ", ".join(["%s"] * len(product_ids))
    lowest = lowest_per_pill_sql(vendor=connection.vendor)
    if connection.vendor == "postgresql":
        stored = Product._meta.get_field("lowest_pill_price").db_type(connection)
        differs = f"IS DISTINCT FROM CAST(({lowest}) AS {stored})"
    else:
        differs = f"IS NOT ({lowest})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = ({lowest}) "
            f"WHERE {pk} IN ({placeholders}) AND {column} {differs}",
            list(product_ids),
        )
        moved = cursor.rowcount
    # The products' pages show the packs written; the listings only a lowest price that moved.
    page_cache.catalog_changed(using=using, product_ids=product_ids, prices=moved > 0)


def lowest_per_pill_sql(*, vendor: str) -> str:
    """SQL of the cheapest pill among the outer product's active tiers (NULL without one).

    The same figure as ``PerPill`` over the product's active tiers (``price / quantity``, the
    price made REAL on SQLite), for the rows of one page only (``priced_cards``: a few dozen
    cards, two index scans each, dosages by product and tiers by dosage), so the cost depends on
    the page, not on the catalogue: computing the minimum for every published product before
    paginating was what made the listing slow on a large catalogue. Part of the page's own query
    rather than a second grouped query (a round trip, and another query for Django to build and
    read), and written out once: as an ORM ``Subquery`` with ``OuterRef`` Django compiled it
    afresh on every page, at more CPU than the query itself (bench/miss.py). Names come from the
    models.
    """
    tier, dosage = PackageTier._meta, Dosage._meta
    price = f't."{tier.get_field("price").column}"'
    if vendor == "sqlite":
        price = f"CAST({price} AS REAL)"
    return (
        f'SELECT MIN({price} / t."{tier.get_field("quantity").column}") '
        f'FROM "{tier.db_table}" t INNER JOIN "{dosage.db_table}" d '
        f'ON t."{tier.get_field("dosage").column}" = d."{dosage.pk.column}" '
        f'WHERE d."{dosage.get_field("product").column}" = "{Product._meta.db_table}"."{Product._meta.pk.column}" '
        f'AND t."{tier.get_field("is_active").column}"'
    )


def lowest_price_names(connection) -> tuple[str, str, str]:
    """The product table, its stored-minimum column and its key, quoted for raw SQL."""
    quote = connection.ops.quote_name
    return (
        quote(Product._meta.db_table),
        quote(Product._meta.get_field("lowest_pill_price").column),
        quote(Product._meta.pk.column),
    )


class PageGeneration(models.Model):
    """A generation of the page cache, kept here when the cache is each process's own memory
    (no ``REDIS_URL``): see ``catalog.page_cache.DatabaseGenerations``. Not a catalog table: its
    writes retire nothing."""

    key = models.CharField(max_length=100, primary_key=True)
    token = models.CharField(max_length=32)

    def __str__(self) -> str:
        return self.key
