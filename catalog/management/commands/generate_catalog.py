"""Synthetic catalog for load tests: ``manage.py generate_catalog --products 10000 --tiers-per-product 10``.

The products are published (the benchmark measures what customers would see), live in their own
"Benchmark" category and have ``bench-`` slugs and ``BENCH-`` SKUs, so ``--delete`` removes exactly
them and nothing a pharmacist entered. The same arguments always produce the same rows (a seeded
random generator), so figures from two runs compare like with like. Rows are written with
PostgreSQL's ``COPY`` (``bulk_create`` in batches on other databases): no history records are
written for them, which is fine for data that never existed as a real price. 100,000 products with
1,000,000 tiers: ``--products 100000 --tiers-per-product 10`` (timing in docs/performance.md).
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, models, router, transaction
from djmoney.money import Money

from catalog import lowest_prices
from catalog.models import (
    Category,
    Dosage,
    DosageForm,
    LegalClass,
    PackageTier,
    Product,
    StrengthUnit,
)
from catalog.page_cache import catalog_changed

SLUG_PREFIX = "bench-"
SKU_PREFIX = "BENCH-"
CATEGORY_SLUG = "benchmark"
CATEGORY_NAME = "Benchmark"
PACK_SIZES = (
    10,
    14,
    20,
    28,
    30,
    56,
    60,
    84,
    90,
    100,
    112,
    120,
    168,
    180,
    240,
    270,
    300,
    360,
    500,
    1000,
)
STRENGTHS_MG = (
    Decimal("0.5"),
    Decimal("1"),
    Decimal("2.5"),
    Decimal("5"),
    Decimal("10"),
    Decimal("20"),
    Decimal("25"),
    Decimal("40"),
    Decimal("50"),
    Decimal("100"),
    Decimal("250"),
    Decimal("500"),
)
SYLLABLES = (
    "ba",
    "clo",
    "fen",
    "mor",
    "ta",
    "zi",
    "pra",
    "lin",
    "dex",
    "ol",
    "vas",
    "tro",
    "mi",
    "sar",
    "ten",
    "cor",
)
CONDITIONS = (
    "high blood pressure",
    "type 2 diabetes",
    "migraine",
    "acid reflux",
    "hay fever",
    "insomnia",
    "muscle spasm",
    "asthma",
    "high cholesterol",
    "anxiety",
    "acne",
    "arthritis pain",
    "gout",
    "nausea",
    "psoriasis",
    "thyroid",
    "heart failure",
    "angina",
    "epilepsy",
    "glaucoma",
)
LEGAL_CLASSES = (
    LegalClass.GENERAL_SALE,
    LegalClass.PHARMACY,
    LegalClass.PRESCRIPTION,
    LegalClass.PRESCRIPTION,
)
FORMS = (DosageForm.TABLET, DosageForm.CAPSULE, DosageForm.TABLET, DosageForm.SOFTGEL)


def ingredient_name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) + rng.choice(
        ("ine", "ol", "am", "ide", "ate")
    )


class Command(BaseCommand):
    help = "Create (or with --delete remove) published synthetic products for benchmarks, slugs prefixed bench-."

    def add_arguments(self, parser):
        parser.add_argument(
            "--products", type=int, default=1000, help="products to create (default 1000)"
        )
        parser.add_argument(
            "--tiers-per-product", type=int, default=10, help="pack sizes per product (default 10)"
        )
        parser.add_argument(
            "--dosages-per-product", type=int, default=2, help="strengths per product (default 2)"
        )
        parser.add_argument(
            "--seed", type=int, default=2024, help="random seed; same seed, same catalog"
        )
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument(
            "--delete",
            action="store_true",
            help="remove the benchmark products and category, then stop",
        )

    def handle(
        self,
        *args,
        products: int,
        tiers_per_product: int,
        dosages_per_product: int,
        seed: int,
        batch_size: int,
        delete: bool,
        **options,
    ):
        started = time.perf_counter()
        if delete:
            removed = self.delete_benchmark_catalog()
            self.stdout.write(
                f"Removed {removed} benchmark products in {time.perf_counter() - started:.1f}s."
            )
            return
        if products < 1:
            raise CommandError("--products must be at least 1.")
        if not 1 <= dosages_per_product <= len(STRENGTHS_MG):
            raise CommandError(f"--dosages-per-product must be between 1 and {len(STRENGTHS_MG)}.")
        if not dosages_per_product <= tiers_per_product <= dosages_per_product * len(PACK_SIZES):
            raise CommandError(
                f"--tiers-per-product must be between --dosages-per-product ({dosages_per_product}) and "
                f"{dosages_per_product * len(PACK_SIZES)}."
            )
        if Product.objects.filter(slug__startswith=SLUG_PREFIX).exists():
            raise CommandError("Benchmark products already exist; run with --delete first.")
        counts = self.create_benchmark_catalog(
            products=products,
            tiers_per_product=tiers_per_product,
            dosages_per_product=dosages_per_product,
            seed=seed,
            batch_size=batch_size,
        )
        self.stdout.write(
            "Created {products} products, {dosages} dosages, {tiers} package tiers in {s:.1f}s.".format(
                **counts, s=time.perf_counter() - started
            )
        )

    @transaction.atomic
    def create_benchmark_catalog(
        self,
        *,
        products: int,
        tiers_per_product: int,
        dosages_per_product: int,
        seed: int,
        batch_size: int,
    ) -> dict[str, int]:
        """Rows are computed as plain tuples (no model instances: 1,000,000 of them would take minutes
        and gigabytes) and written with PostgreSQL's ``COPY`` (``bulk_create`` in batches elsewhere)."""
        rng = random.Random(seed)
        category, _ = Category.objects.get_or_create(
            slug=CATEGORY_SLUG,
            defaults={
                "name": CATEGORY_NAME,
                "position": 999,
                "description": "Synthetic products for load tests; not real medicines.",
            },
        )
        width = max(5, len(str(products)))
        product_rows = []
        for n in range(1, products + 1):
            ingredient = ingredient_name(rng)
            conditions = rng.sample(CONDITIONS, 2)
            product_rows.append(
                {
                    "name": f"{ingredient.capitalize()} {n:0{width}d}",
                    "slug": f"{SLUG_PREFIX}{n:0{width}d}",
                    "category": category,
                    "active_ingredient": ingredient,
                    "dosage_form": rng.choice(FORMS),
                    "legal_class": rng.choice(LEGAL_CLASSES),
                    "summary": f"Synthetic benchmark product used for {conditions[0]} and {conditions[1]}.",
                    "indications": ", ".join(conditions),
                    "is_published": True,
                }
            )
        product_ids = self.write(Product, product_rows, key=("slug",), batch_size=batch_size)

        dosage_rows = []
        for row in product_rows:
            for value in sorted(rng.sample(STRENGTHS_MG, dosages_per_product)):
                cents_per_pill = rng.randint(8, 400)
                dosage_rows.append(
                    {
                        "product_id": product_ids[(row["slug"],)],
                        "strength": f"{value.normalize():f}mg",
                        "strength_value": value,
                        "strength_unit": StrengthUnit.MG,
                        "list_price_per_pill": Money(
                            Decimal(cents_per_pill) / 100 + Decimal("0.00333"), "USD"
                        ),
                    }
                )
        del product_rows
        dosage_ids = self.write(
            Dosage, dosage_rows, key=("product_id", "strength"), batch_size=batch_size
        )

        def tier_rows():
            per_dosage, extra = divmod(tiers_per_product, dosages_per_product)
            for index, dosage in enumerate(dosage_rows):
                count = per_dosage + (1 if index % dosages_per_product < extra else 0)
                sizes = sorted(rng.sample(PACK_SIZES, count))
                list_per_pill = dosage["list_price_per_pill"].amount
                dosage_id = dosage_ids[(dosage["product_id"], dosage["strength"])]
                for position, quantity in enumerate(sizes):
                    # Bigger packs are cheaper per pill: up to 40% off the list price.
                    discount = Decimal(min(40, position * 5)) / 100
                    price = (list_per_pill * quantity * (1 - discount)).quantize(Decimal("0.01"))
                    yield {
                        "dosage_id": dosage_id,
                        "quantity": quantity,
                        "price": Money(max(price, Decimal("0.01")), "USD"),
                        "sku": f"{SKU_PREFIX}{dosage_id}-{quantity}",
                        "position": position,
                    }

        tiers = self.write(PackageTier, tier_rows(), key=None, batch_size=batch_size)
        # COPY bypasses the models: the stored lowest prices in one grouped statement, and retire
        # the cached pages ourselves.
        using = router.db_for_write(Product)
        table, slug = (
            connections[using].ops.quote_name(name)
            for name in (Product._meta.db_table, Product._meta.get_field("slug").column)
        )
        lowest_prices.fill(using=using, where=f"{table}.{slug} LIKE %s", params=[f"{SLUG_PREFIX}%"])
        catalog_changed(everything=True)
        return {"products": len(product_ids), "dosages": len(dosage_rows), "tiers": tiers}

    def write(self, model, rows, *, key: tuple[str, ...] | None, batch_size: int):
        """Insert ``rows`` (dicts of field values); return {key values: id} when ``key`` is given, else a count."""
        connection = connections[router.db_for_write(model)]
        fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
        template = model()
        defaults = {f.attname: f.pre_save(template, add=True) for f in fields}
        if connection.vendor == "postgresql":
            count = self.copy(connection, model, fields, defaults, rows)
        else:
            count = 0
            batch = []
            for row in rows:
                batch.append(model(**row))
                if len(batch) >= batch_size:
                    count += len(model.objects.bulk_create(batch))
                    batch = []
            count += len(model.objects.bulk_create(batch))
        if key is None:
            return count
        return {
            tuple(values[:-1]): values[-1]
            for values in model.objects.filter(**self.bench_filter(model))
            .values_list(*key, "pk")
            .iterator(chunk_size=10_000)
        }

    @staticmethod
    def bench_filter(model) -> dict:
        return (
            {"slug__startswith": SLUG_PREFIX}
            if model is Product
            else {"product__slug__startswith": SLUG_PREFIX}
        )

    @staticmethod
    def delete_bench_tiers_and_dosages(connection) -> None:
        """Two plain ``DELETE`` statements: no collector, no per-row signal or history record."""
        q = connection.ops.quote_name
        product, dosage, tier = (m._meta for m in (Product, Dosage, PackageTier))
        bench_dosages = (
            f"SELECT d.{q(dosage.pk.column)} FROM {q(dosage.db_table)} d "
            f"JOIN {q(product.db_table)} p ON p.{q(product.pk.column)} = d.{q(dosage.get_field('product').column)} "
            f"WHERE p.{q(product.get_field('slug').column)} LIKE %s"
        )
        with connection.cursor() as cursor:
            for table, column in (
                (tier.db_table, tier.get_field("dosage").column),
                (dosage.db_table, dosage.pk.column),
            ):
                cursor.execute(
                    f"DELETE FROM {q(table)} WHERE {q(column)} IN ({bench_dosages})",
                    [f"{SLUG_PREFIX}%"],
                )

    @staticmethod
    def copy(connection, model, fields, defaults, rows) -> int:
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        table = connection.ops.quote_name(model._meta.db_table)
        count = 0
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                values = []
                for f in fields:
                    value = row.get(f.name, row.get(f.attname, defaults[f.attname]))
                    if isinstance(
                        value, Money
                    ):  # djmoney: amount column; the currency is its own field
                        value = value.amount
                    elif (
                        f.attname.endswith("_currency") and f.name.removesuffix("_currency") in row
                    ):
                        value = str(row[f.name.removesuffix("_currency")].currency)
                    elif isinstance(value, models.Model):
                        value = value.pk
                    values.append(value)
                copy.write_row(values)
                count += 1
        return count

    @transaction.atomic
    def delete_benchmark_catalog(self) -> int:
        """Bottom-up set-based deletes of the bench- rows only.

        The ORM's ``delete()`` would load every tier to write a history record for it (100,000
        rows take minutes); these rows were never real prices, so they and any history they
        gathered are removed in a few statements. Rows of other apps pointing at a tier are
        treated as their ``on_delete`` says (cart lines cascade, order lines keep their snapshot).
        """
        bench = Product.objects.filter(slug__startswith=SLUG_PREFIX)
        count = bench.count()
        dosages = Dosage.objects.filter(product__in=bench)
        tiers = PackageTier.objects.filter(dosage__in=dosages)
        for model, queryset in ((PackageTier, tiers), (Dosage, dosages)):
            # include_hidden: cart lines point at tiers with related_name="+".
            for relation in model._meta.get_fields(include_hidden=True):
                if not (
                    relation.auto_created
                    and not relation.concrete
                    and (relation.one_to_many or relation.one_to_one)
                ):
                    continue
                if (
                    relation.related_model in (PackageTier, Dosage)
                    or relation.on_delete is models.DO_NOTHING
                ):
                    continue  # handled below, or history rows (which never block a delete)
                related = relation.related_model._base_manager.filter(
                    **{f"{relation.field.name}__in": queryset}
                )
                if relation.on_delete is models.CASCADE:
                    related.delete()
                elif relation.on_delete is models.SET_NULL:
                    related.update(**{relation.field.name: None})
                elif related.exists():
                    raise CommandError(
                        f"{relation.related_model.__name__} rows still refer to benchmark {model.__name__} rows."
                    )
        PackageTier.history.model.objects.filter(sku__startswith=SKU_PREFIX).delete()
        Dosage.history.model.objects.filter(product__in=bench).delete()
        self.delete_bench_tiers_and_dosages(connections[router.db_for_write(Dosage)])
        bench.delete()
        Category.objects.filter(slug=CATEGORY_SLUG, products__isnull=True).delete()
        return count
