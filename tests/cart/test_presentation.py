"""cart.presentation: the lines and amounts the templates print, exactly as {{ money }} wrote them."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation
from djmoney.money import Money

from cart.presentation import money_html, shown_line, shown_totals
from cart.pricing import CartLineSummary, cart_summary


def printed(value) -> str:
    return Template("{{ value }}").render(Context({"value": value}))


@pytest.mark.parametrize(
    "amount, currency",
    [
        ("12.50", "USD"),
        ("12.5", "USD"),
        ("0.12345", "USD"),
        ("-3.00", "USD"),
        ("1234567.891", "USD"),
        ("0", "USD"),
        ("9.99", "EUR"),
        ("1000", "CAD"),
    ],
)
def test_money_as_the_template_prints_it(amount, currency):
    value = Money(Decimal(amount), currency)
    for _ in range(2):  # formatted, then remembered
        assert money_html(value) == printed(value)
        assert printed(money_html(value)) == printed(value)  # printed again unchanged (safe text)


@pytest.fixture
def i18n_on(settings):
    """The shop runs with ``USE_I18N = False`` (English only); a deployment may turn it on.

    Django picks its translation functions once, on first use: they are forgotten on the way in
    and out so each side gets the ones its setting calls for.
    """
    translation._trans.__dict__.clear()
    settings.USE_I18N = True
    yield
    settings.USE_I18N = False
    translation._trans.__dict__.clear()


def test_each_language_its_own_text(i18n_on):
    value = Money(Decimal("1234.50"), "EUR")
    with translation.override("de"):
        german = printed(value)
        assert money_html(value) == german
    assert money_html(value) == printed(value) != german


def test_format_options_are_respected():
    value = Money(Decimal("12.50"), "USD", format_options={"locale": "de_DE"})
    assert money_html(value) == printed(value)


@pytest.mark.django_db
@pytest.mark.parametrize("grouping", [False, True])
def test_a_summary_line_and_totals_print_as_before(baclofen, customer, settings, grouping):
    settings.USE_THOUSAND_SEPARATOR = grouping
    from cart.models import Cart, CartLine
    from catalog.models import PackageTier

    cart = Cart.objects.create(user=customer)
    tier = PackageTier.objects.get(dosage__product=baclofen, dosage__strength="10mg", quantity=90)
    CartLine.objects.create(
        cart=cart, tier=tier, packages=12, price_when_added=Money("1.00", "USD")
    )
    summary = cart_summary(cart)
    (line,) = summary.lines
    shown = shown_line(line)
    for name in CartLineSummary.__dataclass_fields__:
        assert printed(shown[name]) == printed(getattr(line, name)), name
    assert shown["shows_saving"] == line.shows_saving and shown["description"] == line.description
    assert printed(shown["pills"]) == ("1,080" if grouping else "1080")
    totals = shown_totals(summary)
    for name, text in totals.items():
        assert text == printed(getattr(summary, name)), name


@pytest.mark.parametrize("count", [0, 1, 2, 1000])
def test_numbers_print_and_pluralize_as_the_int_did(count):
    from cart.presentation import number_html

    plural = Template("{{ n }} pack{{ n|pluralize }}, {{ n|pluralize:'item,items' }}")
    assert plural.render(Context({"n": number_html(count)})) == plural.render(Context({"n": count}))
