"""The shop's URLs plus two pages for tests/ops/test_behind_proxy.py: what Django saw of a request."""

from allauth.account.adapter import get_adapter
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


def seen(request):
    """The client address the shop uses (sign-in rate limits), the scheme, and the path's parts."""
    return JsonResponse(
        {
            "client_ip": get_adapter().get_client_ip(request),
            "is_secure": request.is_secure(),
            "script_name": request.META.get("SCRIPT_NAME", ""),
            "path": request.path,
            "path_info": request.path_info,
            "script_name_headers": {
                k: v for k, v in request.META.items() if "SCRIPT" in k and k != "SCRIPT_NAME"
            },
        }
    )


@csrf_exempt
def upload(request):
    return JsonResponse({"bytes": sum(f.size for f in request.FILES.values())})


urlpatterns = [
    path("_proxy/seen/", seen),
    path("_proxy/upload/", upload),
    path("", include("pharmacy.urls")),
]
