from django.shortcuts import get_object_or_404, render

from .models import Category, Product


def home(request):
    return render(request, "catalog/home.html", {"categories": Category.objects.all()})


def product_list(request):
    return render(request, "catalog/product_list.html", {"products": Product.objects.published()})


def product_detail(request, slug: str):
    product = get_object_or_404(Product.objects.published(), slug=slug)
    return render(request, "catalog/product_detail.html", {"product": product})
