"""factory-boy factories shared by every app's tests."""

from decimal import Decimal

import factory
from djmoney.money import Money

from catalog.models import Category, Dosage, LegalClass, PackageTier, Product, StrengthUnit


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "accounts.User"
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = "Alex"
    last_name = "Morgan"
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()

    @factory.post_generation
    def email_verified(obj, create, extracted, **kwargs):
        """Accounts sign in only with a verified address (allauth's EmailAddress row); factories
        make verified accounts unless ``email_verified=False``."""
        if create:
            from allauth.account.models import EmailAddress

            EmailAddress.objects.update_or_create(
                user=obj,
                email=obj.email,
                defaults={"verified": extracted is not False, "primary": True},
            )


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Medicine {n}")
    slug = factory.Sequence(lambda n: f"medicine-{n}")
    category = factory.SubFactory(CategoryFactory)
    active_ingredient = factory.LazyAttribute(lambda o: o.name.lower())
    legal_class = LegalClass.PHARMACY
    summary = "A medicine used in tests."
    indications = "testing"
    is_published = True


class DosageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dosage

    product = factory.SubFactory(ProductFactory)
    strength_value = Decimal("10")
    strength_unit = StrengthUnit.MG
    strength = factory.LazyAttribute(
        lambda o: f"{format(Decimal(o.strength_value).normalize(), 'f')}{o.strength_unit}"
    )
    list_price_per_pill = Money("1.00000", "USD")


class PackageTierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PackageTier

    dosage = factory.SubFactory(DosageFactory)
    quantity = 30
    price = Money("25.00", "USD")
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    position = factory.LazyAttribute(lambda o: o.quantity)
