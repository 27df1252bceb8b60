/* Checkout: send the address to the shop, then let Stripe.js authorise the card.
 *
 * The card number goes from the Card Element straight to Stripe (or, in the demo and tests,
 * to localstripe through localstripe-adapter.js); the shop only ever sees the PaymentIntent's
 * outcome, which it reads from Stripe itself. This file is the same for both.
 */
(function () {
  "use strict";
  var form = document.getElementById("checkout-form");
  if (!form) return;
  var button = document.getElementById("pay-button");
  var formError = document.getElementById("form-error");
  var cardError = document.getElementById("card-error");
  // The error summary at the top: every problem of the last try, each a link to its field.
  var summary = document.getElementById("error-summary");
  var errorList = document.getElementById("error-list");
  var buttonLabel = button ? button.textContent : "";

  // The order's figures are the server's: htmx re-prices the summary when the state, ZIP or
  // shipping method change (hx-* on #checkout-summary). Nothing here adds money; it only makes
  // sure that what Pay carries (the signed figures beside the total) is what the page shows.
  var summaryBox = document.getElementById("checkout-summary");
  var updateButton = document.getElementById("update-total");
  document.addEventListener("DOMContentLoaded", function () {
    if (window.htmx && updateButton) updateButton.hidden = true;  // the totals follow the fields by themselves
  });

  function typedFor() {
    var method = form.querySelector("input[name=shipping_method]:checked");
    return form.elements.state.value + "|" + form.elements.zip_code.value + "|" + (method ? method.value : "standard");
  }

  function shownTotal() {
    var total = document.querySelector("#pay-total strong");
    return total ? total.textContent : "";
  }

  function refreshTotals() {
    if (!window.htmx || !summaryBox) return Promise.resolve();
    return window.htmx.ajax("POST", form.action, { source: summaryBox, target: "#checkout-totals", swap: "outerHTML" });
  }

  // Before paying: if the totals on screen are not those of the fields as they are now (a change
  // still on its way), fetch them; if the total moved, stop so the customer sees it first.
  async function totalsAreCurrent() {
    var totals = document.getElementById("checkout-totals");
    if (!window.htmx || !totals || totals.dataset.for === typedFor()) return true;
    var before = shownTotal();
    await refreshTotals();
    if (shownTotal() === before) return true;
    var note = document.getElementById("total-updated");
    note.querySelector("strong").textContent = shownTotal();
    note.hidden = false;
    note.focus({ preventScroll: true });
    note.scrollIntoView({ block: "center" });
    return false;
  }

  if (typeof window.Stripe !== "function" || !form.dataset.stripeKey) {
    formError.textContent = "Card payments are unavailable right now. Please try again later or call us.";
    if (summary) summary.hidden = false;
    if (button) button.disabled = true;
    return;
  }

  var stripe = window.Stripe(form.dataset.stripeKey);
  var card = stripe.elements().create("card", { hidePostalCode: true });
  card.mount("#card-element");
  card.on("change", function (event) {
    cardError.textContent = event && event.error ? event.error.message : "";
  });

  function fieldOf(name) {
    var input = form.elements[name];
    return input && input.length && !input.tagName ? input[0] : input;  // a radio group: its first choice
  }

  function labelOf(input) {
    var label = input && input.id ? document.querySelector('label[for="' + input.id + '"]') : null;
    var group = input && input.type === "radio" ? input.closest("fieldset") : null;
    if (group && group.querySelector("legend")) return group.querySelector("legend").textContent.trim();
    return label ? label.textContent.trim() : "";
  }

  function addToSummary(text, target) {
    var item = document.createElement("li");
    if (target && target.id) {
      var link = document.createElement("a");
      link.href = "#" + target.id;
      link.textContent = text;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        target.focus({ preventScroll: true });
        target.scrollIntoView({ block: "center", behavior: "instant" });
      });
      item.appendChild(link);
    } else {
      item.textContent = text;
    }
    errorList.appendChild(item);
  }

  // Show the summary and move focus to it, so a keyboard or screen reader user starts from the problems.
  function showSummary() {
    if (!summary) return;
    summary.hidden = false;
    summary.focus({ preventScroll: true });
    summary.scrollIntoView({ block: "start", behavior: "instant" });
  }

  function clearErrors() {
    formError.textContent = "";
    if (errorList) errorList.textContent = "";
    if (summary) summary.hidden = true;
    cardError.textContent = "";
    form.querySelectorAll(".field-error").forEach(function (el) { el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function showFieldErrors(errors) {
    Object.keys(errors || {}).forEach(function (name) {
      var target = document.getElementById("error-" + name);
      var input = fieldOf(name);
      var text = errors[name].map(function (e) { return e.message; }).join(" ");
      if (target) target.textContent = text;
      if (errorList) {
        var label = labelOf(input);
        addToSummary(label ? label + ": " + text : text, target ? input : null);
      } else if (!target) {
        formError.textContent += " " + text;
      }
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
    });
  }

  // The cart changed since this page was shown (price, sold out): say what, and let the next
  // press confirm the new figures. Nothing was ordered.
  function showChanges(data) {
    var box = document.getElementById("checkout-changes");
    var list = document.getElementById("checkout-changes-list");
    list.textContent = "";
    (data.changes || []).forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    });
    document.getElementById("checkout-changes-total").textContent = data.total || "";
    form.elements.figures.value = data.figures;
    box.hidden = false;
    buttonLabel = "Confirm new total and pay";
    box.scrollIntoView({ block: "center" });
    refreshTotals();  // the summary and the total by the button show the new figures too
  }

  function busy(on) {
    if (!button) return;
    button.disabled = on;
    button.textContent = on ? "Processing…" : buttonLabel;
  }

  form.addEventListener("submit", async function (event) {
    var by = event.submitter ? event.submitter.name : "";
    // Enter in an address field presses the form's first button, "Apply" (the summary comes first):
    // with the code box empty that is "Update total".
    if (by === "apply_code" && !(form.elements.code && form.elements.code.value.trim())) by = "update";
    // Apply or remove a code: the server prices the page again with every typed field kept.
    if (by === "apply_code" || by === "remove_code") return;
    if (by === "update") {  // Enter in a field, or "Update total"
      if (!window.htmx) return;  // the page itself comes back priced, as without JavaScript
      event.preventDefault();
      refreshTotals();
      return;
    }
    event.preventDefault();
    clearErrors();
    document.getElementById("total-updated").hidden = true;
    busy(true);
    try {
      if (!(await totalsAreCurrent())) {
        busy(false);
        return;
      }
      var response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      var data = await response.json().catch(function () { return {}; });
      if (response.status === 409 && data.figures) {
        showChanges(data);
        busy(false);
        return;
      }
      if (!response.ok) {
        formError.textContent = data.message || "Please check the form and try again.";
        showFieldErrors(data.errors);
        busy(false);
        showSummary();
        return;
      }
      var result = await stripe.confirmCardPayment(data.client_secret, {
        payment_method: { card: card, billing_details: { name: data.billing_name, email: data.email } },
      });
      if (result.error) {
        cardError.textContent = (result.error.message || "Your card could not be authorised.") +
          " Nothing has been charged; you can try again or use another card.";
        if (errorList) addToSummary("Card: " + cardError.textContent, null);
        busy(false);
        showSummary();
        return;
      }
      window.location.assign(data.return_url);
    } catch (err) {
      formError.textContent = "We could not reach the payment service. Please check your connection and try again.";
      busy(false);
      showSummary();
    }
  });
})();
