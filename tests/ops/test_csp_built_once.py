"""pharmacy.middleware.CSPMiddleware: django-csp's headers, the policy text built once (issue #17)."""
import csp.middleware
import pytest
from csp.constants import NONCE, SELF
from csp.decorators import csp_exempt, csp_replace, csp_update
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from pharmacy.middleware import CSPMiddleware

HEADERS = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")


def view(uses_nonce: bool):
    def plain(request):
        return HttpResponse(f"<script nonce='{request.csp_nonce}'></script>" if uses_nonce else "hello")

    return plain


VIEWS = {
    "nonce used": view(True),
    "no nonce": view(False),
    "update": csp_update({"img-src": "https://img.example"})(view(True)),
    "replace": csp_replace({"script-src": [SELF]})(view(True)),
    "exempt": csp_exempt()(view(False)),
}


def headers(middleware_class, view_func, path="/"):
    request = RequestFactory().get(path)
    response = middleware_class(view_func)(request)
    nonce = getattr(request, "_csp_nonce", None)
    found = {name: response.get(name) for name in HEADERS}
    if nonce:  # each request has its own nonce: compare with it taken out
        found = {name: value and value.replace(nonce, "N") for name, value in found.items()}
        assert any(value and "'nonce-N'" in value for value in found.values())
    return found


@pytest.mark.parametrize("name", VIEWS)
def test_same_headers_as_django_csp(name):
    for _ in range(2):  # built, then from what was kept
        assert headers(CSPMiddleware, VIEWS[name]) == headers(csp.middleware.CSPMiddleware, VIEWS[name])


@pytest.mark.parametrize("name", VIEWS)
def test_same_headers_with_report_only_and_excluded_prefixes(name):
    policy = {"DIRECTIVES": {"default-src": [SELF], "script-src": [SELF, NONCE]}, "EXCLUDE_URL_PREFIXES": ["/skip/"]}
    report = {"DIRECTIVES": {"default-src": [SELF], "style-src": [NONCE], "report-uri": "/csp-report/"}}
    with override_settings(CONTENT_SECURITY_POLICY=policy, CONTENT_SECURITY_POLICY_REPORT_ONLY=report):
        for path in ("/", "/skip/x"):
            for _ in range(2):
                ours = headers(CSPMiddleware, VIEWS[name], path)
                assert ours == headers(csp.middleware.CSPMiddleware, VIEWS[name], path)
        assert ours["Content-Security-Policy-Report-Only"] is not None or name == "exempt"


def test_a_settings_change_is_followed():
    before = headers(CSPMiddleware, VIEWS["no nonce"])["Content-Security-Policy"]
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}}):
        assert headers(CSPMiddleware, VIEWS["no nonce"])["Content-Security-Policy"] == "default-src 'none'"
    assert headers(CSPMiddleware, VIEWS["no nonce"])["Content-Security-Policy"] == before


def test_every_response_its_own_nonce():
    first, second = (RequestFactory().get("/") for _ in range(2))
    answers = [CSPMiddleware(VIEWS["nonce used"])(request) for request in (first, second)]
    assert first._csp_nonce != second._csp_nonce
    for request, response in zip((first, second), answers):
        assert f"'nonce-{request._csp_nonce}'" in response["Content-Security-Policy"]
        assert CSPMiddleware._NONCE_STAND_IN not in response["Content-Security-Policy"]


def test_the_site_uses_it():
    from django.conf import settings

    assert "pharmacy.middleware.CSPMiddleware" in settings.MIDDLEWARE
    assert "csp.middleware.CSPMiddleware" not in settings.MIDDLEWARE
