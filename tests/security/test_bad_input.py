"""Bad input gets a 4xx with a reason (or a safe redirect), never a 500; HEAD works where GET does."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from djmoney.money import Money

from cart.models import CartLine
from prescriptions.files import check_prescription_upload
from tests.factories import PackageTierFactory

pytestmark = pytest.mark.django_db

NON_ASCII_DIGITS = ["²", "٣", "１", "߂"]


@pytest.fixture
def tier(db):
    return PackageTierFactory(price=Money("12.00", "USD"), dosage__product__name="Cetirizine")


def test_a_nul_byte_in_a_query_parameter_or_form_field_is_a_400_with_the_reason(client, tier):
    response = client.get("/products/", {"q": "para\x00cetamol"})
    assert response.status_code == 400
    assert "NUL" in response.content.decode() and "'q'" in response.content.decode()
    response = client.post("/cart/add/", {"tier_id": str(tier.pk), "packages": "1\x00"})
    assert response.status_code == 400 and "'packages'" in response.content.decode()
    assert client.get("/accounts/password/reset/a%00b/token/").status_code in (400, 404)
    assert not CartLine.objects.exists()
    # The Stripe webhook reads its raw body itself: not touched, still refuses unsigned input.
    assert 400 <= client.post("/stripe/webhook/", {"a": "\x00"}).status_code < 500


@pytest.mark.parametrize("digit", NON_ASCII_DIGITS)
def test_non_ascii_digits_in_cart_fields_are_refused_not_crashed(client, tier, digit):
    htmx = {"HX-Request": "true"}
    assert (
        client.post("/cart/add/", {"tier_id": digit, "packages": "1"}, headers=htmx).status_code
        == 400
    )
    assert (
        client.post(
            "/cart/add/", {"tier_id": str(tier.pk), "packages": digit}, headers=htmx
        ).status_code
        == 400
    )
    assert not CartLine.objects.exists()
    assert client.post("/cart/add/", {"tier_id": str(tier.pk), "packages": "1"}).status_code == 302
    assert client.post(
        "/cart/update/", {"line_id": digit, "packages": "2"}, headers=htmx
    ).status_code in (400, 404)
    assert client.post("/cart/remove/", {"line_id": digit}, headers=htmx).status_code in (400, 404)
    # Without JavaScript: back to the page with the message, nothing added.
    response = client.post("/cart/add/", {"tier_id": str(tier.pk), "packages": digit}, follow=True)
    assert response.status_code == 200 and "number of packages" in response.content.decode()
    assert CartLine.objects.get().packages == 1


@pytest.mark.parametrize(
    "target",
    [
        "id",
        "//evil.com/",
        "https://evil.com/",
        "javascript:alert(1)",
        "/\\evil.com",
        "\x01/x",
        "../x",
    ],
)
def test_a_bare_word_or_hostile_next_or_referer_falls_back_to_the_cart(client, tier, target):
    response = client.post("/cart/add/", {"tier_id": str(tier.pk), "packages": "1", "next": target})
    assert response.status_code == 302 and response["Location"] == "/cart/"
    response = client.post(
        "/cart/add/", {"tier_id": str(tier.pk), "packages": "1"}, headers={"Referer": target}
    )
    assert response.status_code == 302 and response["Location"] == "/cart/"
    assert CartLine.objects.get().packages == 2  # the write happened, then the redirect worked


def test_a_safe_next_or_referer_is_followed(client, tier):
    page = tier.dosage.product.get_absolute_url()
    response = client.post("/cart/add/", {"tier_id": str(tier.pk), "packages": "1", "next": page})
    assert response["Location"] == page
    response = client.post(
        "/cart/add/", {"tier_id": str(tier.pk)}, headers={"Referer": f"http://testserver{page}"}
    )
    assert response["Location"] == f"http://testserver{page}"


def test_head_answers_wherever_get_does(client, tier):
    product = tier.dosage.product.get_absolute_url()
    for url in ["/", "/products/", product, "/cart/", "/robots.txt", "/sitemap.xml", "/healthz"]:
        get, head = client.get(url), client.head(url)
        assert get.status_code == 200, url
        assert head.status_code == 200, url
        assert head.content == b"", url


def test_the_upload_size_message_says_the_files_real_size(settings):
    settings.PRESCRIPTION_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
    upload = SimpleUploadedFile(
        "big.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024), content_type="application/pdf"
    )
    with pytest.raises(ValidationError) as error:
        check_prescription_upload(upload)
    message = error.value.messages[0]
    assert "(10.1 MB)" in message and "The limit is 10 MB" in message
    settings.PRESCRIPTION_MAX_UPLOAD_BYTES = 1000
    small = SimpleUploadedFile("s.pdf", b"%PDF-1.4\n" + b"0" * 3000, content_type="application/pdf")
    with pytest.raises(ValidationError) as error:
        check_prescription_upload(small)
    assert (
        "(3 KB)" in error.value.messages[0] and "The limit is 1000 bytes" in error.value.messages[0]
    )
