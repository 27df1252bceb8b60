"""Auto-refill pages (issue 25): the patient's page per prescription (opt in, consent and card,
skip, change the date, pause, resume, stop, cancel a refill), and the notice's signed links.

Thin: the rules are in ``prescriptions.autorefill``. Health data on every page: never cached
(``never_cache`` sends ``no-store``). The account pages show only the signed-in patient's own
prescriptions. A notice link works without signing in, acts only on a click (``POST``), and
names the medicine only to the signed-in patient it belongs to.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from checkout.forms import shipping_address
from payments import stripe_gateway as gateway

from . import autorefill as service
from . import autorefill_emails as emails
from . import autorefill_rules as rules
from .autorefill_forms import AutoRefillForm, ConsentForm, NewDateForm
from .models import AutoRefill, AutoRefillStatus, PauseReason
from .refill_checkout import last_shipping_address


def _page(request, record, *, form=None, status=200):
    autorefill = service.autorefill_for(record)
    today = timezone.localdate()
    packs = service.packs_for(record)
    if form is None:
        initial = {**last_shipping_address(request.user), "shipping_method": "standard"}
        if autorefill is not None and autorefill.ship_line1:
            initial.update(_address_of(autorefill))
        default = autorefill.tier_id if autorefill else None
        if default is None and packs:
            within = [t for t in packs if t.quantity <= record.quantity_per_fill]
            default = (within or packs)[-1].pk
        form = AutoRefillForm(initial={**initial, "tier_id": default}, packs=packs)
    price_now = ""
    if autorefill is not None and autorefill.status == AutoRefillStatus.PAUSED:
        try:
            price_now = service.autorefill_price(autorefill=autorefill, due_on=today).total
        except service.AutoRefillError:
            price_now = ""
    history = record.events.filter(kind="autorefill").order_by("-created_at", "-id")[:20]
    runs = autorefill.runs.select_related("order").order_by("-due_on")[:10] if autorefill else []
    return render(
        request,
        "prescriptions/autorefill/manage.html",
        {
            "record": record,
            "autorefill": autorefill,
            "refusal": rules.refusal(record, today=today),
            "packs": packs,
            "form": form,
            "first_due": rules.earliest_due(record, today=today),
            "notice_days": rules.notice_days(),
            "history": history,
            "runs": runs,
            "price_now": price_now,
            "what_next": emails.WHAT_NEXT.get(autorefill.pause_reason, "") if autorefill else "",
            "needs_card": autorefill is None
            or autorefill.status == AutoRefillStatus.STOPPED
            or autorefill.pause_reason
            in (PauseReason.DECLINED, PauseReason.AUTHENTICATION, PauseReason.CONSENT_EXPIRED),
        },
        status=status,
    )


def _address_of(autorefill: AutoRefill) -> dict:
    return {
        "name": autorefill.ship_name,
        "line1": autorefill.ship_line1,
        "line2": autorefill.ship_line2,
        "city": autorefill.ship_city,
        "state": autorefill.ship_state,
        "zip_code": autorefill.ship_zip,
        "shipping_method": autorefill.shipping_method,
    }


def _record(request, pk):
    try:
        return service.own_record(user=request.user, record_id=pk)
    except service.AutoRefillError:
        raise Http404("No such prescription on file.") from None


@never_cache
@require_safe
@login_required
def manage(request, pk: int):
    return _page(request, _record(request, pk))


@never_cache
@require_POST
@login_required
def start(request, pk: int):
    """Step one of opting in: the pack and the address; then the consent and the card."""
    record = _record(request, pk)
    form = AutoRefillForm(request.POST, packs=service.packs_for(record))
    if not form.is_valid():
        return _page(request, record, form=form, status=400)
    data = form.cleaned_data
    try:
        service.autorefill_start(
            user=request.user,
            record_id=record.pk,
            tier_id=data["tier_id"],
            address=shipping_address(data),
            shipping_method=data["shipping_method"],
        )
    except service.AutoRefillError as exc:
        messages.error(request, exc.message)
        return _page(request, record, form=form, status=400)
    return redirect("autorefill:consent", pk=record.pk)


@never_cache
@require_safe
@login_required
def consent(request, pk: int, *, form=None, status=200):
    """Step two: the terms in full, the price, the first due date, and the card."""
    record = _record(request, pk)
    autorefill = service.autorefill_for(record)
    if autorefill is None or autorefill.is_active or not autorefill.stripe_setup_intent_id:
        return redirect("autorefill:manage", pk=record.pk)
    try:
        setup = gateway.retrieve_setup_intent(autorefill.stripe_setup_intent_id)
    except gateway.PaymentGatewayError as exc:
        messages.error(request, exc.user_message)
        return redirect("autorefill:manage", pk=record.pk)
    return render(
        request,
        "prescriptions/autorefill/consent.html",
        {
            "record": record,
            "autorefill": autorefill,
            "consent_text": service.consent_text(autorefill, what=service.what_text(autorefill)),
            "client_secret": setup.client_secret,
            "setup_intent_id": setup.id,
            "form": form or ConsentForm(initial={"setup_intent": setup.id}),
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "stripe_js_url": settings.STRIPE_JS_URL,
            "use_localstripe_adapter": bool(settings.STRIPE_API_BASE),
        },
        status=status,
    )


@never_cache
@require_POST
@login_required
def confirm(request, pk: int):
    record = _record(request, pk)
    form = ConsentForm(request.POST)
    if not form.is_valid():
        request.method = "GET"
        return consent(request, pk, form=form, status=400)
    try:
        service.autorefill_confirm(
            user=request.user,
            record_id=record.pk,
            setup_intent_id=form.cleaned_data["setup_intent"],
        )
    except service.AutoRefillError as exc:
        messages.error(request, exc.message)
        return redirect("autorefill:manage", pk=record.pk)
    messages.success(request, "Auto-refill is on. We email you before each refill.")
    return redirect("autorefill:manage", pk=record.pk)


@never_cache
@require_POST
@login_required
def change(request, pk: int, action: str):
    """Skip, new date, pause, resume or stop, from the patient's page."""
    record = _record(request, pk)
    autorefill = service.autorefill_for(record)
    if autorefill is None:
        raise Http404("Auto-refill is not set up for this prescription.")
    try:
        done = _act(request, autorefill, action, due_on=autorefill.next_due_on)
    except service.AutoRefillError as exc:
        messages.error(request, exc.message)
        return _page(request, record, status=400)
    messages.success(request, done)
    return redirect("autorefill:manage", pk=record.pk)


def _act(request, autorefill: AutoRefill, action: str, *, due_on) -> str:
    by = request.user if request.user.is_authenticated else None
    if action == "skip":
        updated = service.autorefill_skip(autorefill_id=autorefill.pk, due_on=due_on, by=by)
        return f"Skipped. The next refill is due on {updated.next_due_on:%B %-d, %Y}."
    if action == "date":
        form = NewDateForm(request.POST)
        if not form.is_valid():
            raise service.AutoRefillError("Please give a date.")
        updated = service.autorefill_change_date(
            autorefill_id=autorefill.pk,
            due_on=due_on,
            new_date=form.cleaned_data["new_date"],
            by=by,
        )
        return f"The refill is now due on {updated.next_due_on:%B %-d, %Y}."
    if action == "pause":
        service.autorefill_pause(autorefill_id=autorefill.pk, by=by, due_on=due_on)
        return "Auto-refill is paused. Nothing will be ordered until you turn it back on."
    if action == "resume" and by is not None:
        updated = service.autorefill_resume(
            autorefill_id=autorefill.pk, by=by, shown_total=request.POST.get("shown_total", "")
        )
        return (
            f"Auto-refill is on again. The next refill is due on {updated.next_due_on:%B %-d, %Y}."
        )
    if action == "stop" and by is not None:
        service.autorefill_stop(autorefill_id=autorefill.pk, by=by)
        return "Auto-refill is stopped and your saved card removed."
    raise Http404("No such action.")


@never_cache
@require_POST
@login_required
def cancel_order(request, number: int):
    try:
        order = service.autorefill_cancel_order(user=request.user, order_number=number)
    except service.AutoRefillError as exc:
        messages.error(request, exc.message)
        return redirect("refills:list")
    messages.success(
        request, f"Refill order {order.number} is canceled; the hold on your card is released."
    )
    run = order.autorefill_run
    return redirect("autorefill:manage", pk=run.autorefill.prescription_id)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def notice(request, token: str, action: str):
    """A notice's link: a page that says what the click will do, then does it on the click."""
    found = emails.notice_token_read(token)
    if found is None or action not in emails.NOTICE_ACTIONS:
        return render(
            request, "prescriptions/autorefill/notice.html", {"invalid": True}, status=404
        )
    autorefill_id, due_on = found
    autorefill = (
        AutoRefill.objects.select_related("prescription", "user").filter(pk=autorefill_id).first()
    )
    if autorefill is None:
        return render(
            request, "prescriptions/autorefill/notice.html", {"invalid": True}, status=404
        )
    owner = request.user.is_authenticated and request.user.pk == autorefill.user_id
    context = {
        "autorefill": autorefill,
        "action": action,
        "due_on": due_on,
        "owner": owner,
        "form": NewDateForm(),
        "stale": not autorefill.is_active or autorefill.next_due_on != due_on,
        "manage_url": reverse("autorefill:manage", kwargs={"pk": autorefill.prescription_id}),
    }
    if request.method == "POST":
        try:
            context["done"] = _act(request, autorefill, action, due_on=due_on)
        except service.AutoRefillError as exc:
            context["error"] = exc.message
            return render(request, "prescriptions/autorefill/notice.html", context, status=400)
        context["stale"] = False
    return render(request, "prescriptions/autorefill/notice.html", context)
