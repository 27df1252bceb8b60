"""``{% phone %}``: a prescriber's number on the pharmacist's pages, dialable when it is a US one."""

import pytest
from django.template import engines


def render(number) -> str:
    template = engines["django"].from_string("{% load order_tags %}{% phone number %}")
    return template.render({"number": number})


@pytest.mark.parametrize(
    "number",
    ["518-555-0101", "(518) 555 0101", "+1 518 555 0101", "15185550101"],
)
def test_a_us_number_is_one_dialable_link(number):
    assert render(number) == '<a class="nowrap" href="tel:+15185550101">(518) 555-0101</a>'


@pytest.mark.parametrize("number", ["555-0101", "+44 20 7946 0958", "25185550101"])
def test_anything_else_is_shown_as_given_and_escaped(number):
    assert render(number) == f'<span class="nowrap">{number}</span>'


def test_the_number_is_escaped():
    assert render("<b>518</b>") == '<span class="nowrap">&lt;b&gt;518&lt;/b&gt;</span>'
