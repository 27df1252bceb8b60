from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST


def cart_detail(request):
    return render(request, "cart/cart_detail.html", {})


@require_POST
def cart_add(request):
    messages.info(request, "Adding to the cart is coming soon.")
    return redirect(request.META.get("HTTP_REFERER") or "catalog:home")
