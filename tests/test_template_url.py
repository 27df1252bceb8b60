"""pharmacy.template_url: ``{% url %}`` remembering its answers gives exactly what Django's gives."""
import pytest
from django.template import Context, Engine, RequestContext, Template, TemplateSyntaxError
from django.test import RequestFactory, override_settings
from django.urls import NoReverseMatch, clear_script_prefix, set_script_prefix

from pharmacy.template_url import RememberingURLNode

DJANGO_ONLY = Engine()  # Django's own {% url %}, to compare with

SOURCES = [
    "{% url 'cart:detail' %}",
    "{% url 'catalog:product_detail' slug='baclofen' %}|{% url 'catalog:product_detail' slug=slug %}",
    "{% url 'catalog:product_detail' slug=slug as link %}[{{ link }}]",
    "{% url name %}",
    "{% url 'no-such-view' as nothing %}[{{ nothing }}]",
]


def render(source: str, context: dict, *, ours: bool = True, request=None) -> str:
    template = Template(source) if ours else DJANGO_ONLY.from_string(source)
    ctx = RequestContext(request, context) if request is not None else Context(context)
    return template.render(ctx)


def test_the_builtin_is_this_node():
    template = Template("{% url 'cart:detail' %}")
    assert isinstance(template.nodelist[0], RememberingURLNode)
    with pytest.raises(TemplateSyntaxError):
        Template("{% url %}")


@pytest.mark.parametrize("source", SOURCES)
def test_same_output_as_django_twice(source):
    for slug in ("baclofen", "ibuprofen", "baclofen"):
        context = {"slug": slug, "name": "cart:detail"}
        expected = render(source, context, ours=False)
        assert render(source, context) == expected
        assert render(source, context) == expected  # the remembered answer


def test_unknown_view_still_an_error():
    for _ in range(2):
        with pytest.raises(NoReverseMatch):
            render("{% url 'no-such-view' %}", {})


def test_arguments_that_are_not_plain_are_reversed_as_usual():
    class Slug:
        def __init__(self, text):
            self.text = text

        def __str__(self):
            return self.text

    for text in ("one", "two"):
        assert render("{% url 'catalog:product_detail' slug=s %}", {"s": Slug(text)}) == f"/products/{text}/"


def test_script_prefix_is_part_of_the_answer():
    try:
        assert render("{% url 'cart:detail' %}", {}) == "/cart/"
        set_script_prefix("/shop/")
        assert render("{% url 'cart:detail' %}", {}) == "/shop/cart/"
    finally:
        clear_script_prefix()
        set_script_prefix("/")
    assert render("{% url 'cart:detail' %}", {}) == "/cart/"


def test_another_urlconf_gets_its_own_answers():
    assert render("{% url 'healthz' %}", {}) == "/healthz"
    with override_settings(ROOT_URLCONF="tests.template_url_urls"):
        assert render("{% url 'healthz' %}", {}) == "/elsewhere/healthz"
    assert render("{% url 'healthz' %}", {}) == "/healthz"


@override_settings(ROOT_URLCONF="tests.template_url_urls")
def test_escaped_as_django_escapes():
    for source in ("{% url 'word' word='a&b' %}", "{% autoescape off %}{% url 'word' word='a&b' %}{% endautoescape %}"):
        for _ in range(2):
            assert render(source, {}) == render(source, {}, ours=False)
    assert render("{% url 'word' word='a&b' %}", {}) == "/elsewhere/a&amp;b/"


def test_current_app_from_the_request_as_django_does():
    request = RequestFactory().get("/")
    request.current_app = "admin"
    source = "{% url 'admin:index' %}"
    assert render(source, {}, request=request) == render(source, {}, ours=False, request=request) == "/admin/"
