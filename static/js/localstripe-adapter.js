/* localstripe adapter: loaded after localstripe's mock Stripe.js, only when the shop runs
 * against localstripe (settings.STRIPE_API_BASE set: the demo and the tests). Never in production.
 *
 * The mock's confirmCardPayment() ignores its data and always opens a "3D Secure" dialog, and
 * its createPaymentMethod() does nothing. This wrapper makes
 *     stripe.confirmCardPayment(clientSecret, {payment_method: {card: element}})
 * behave as real Stripe.js does: create a PaymentMethod from the card typed into the mock
 * element, attach it to the PaymentIntent, confirm it, and only if the card asks for 3-D Secure
 * open the mock's dialog. All calls go to localstripe (standing in for Stripe's servers), never
 * to the shop. localstripe accepts any secret-looking key, hence the placeholder below.
 */
(function () {
  "use strict";
  if (typeof window.Stripe !== "function") return;
  var mockStripe = window.Stripe;
  var script = document.querySelector('script[src*="/js.stripe.com/v3"]');
  var base = script ? script.src.replace(/\/js\.stripe\.com\/v3\/?$/, "") : "";
  var AUTH = "Bearer sk_test_localstripe_browser";

  async function call(method, path, params) {
    var body = params ? new URLSearchParams(params).toString() : undefined;
    var response = await fetch(base + path, {
      method: method,
      headers: { Authorization: AUTH, "Content-Type": "application/x-www-form-urlencoded" },
      body: method === "GET" ? undefined : body,
    });
    var json = await response.json().catch(function () { return {}; });
    if (!response.ok || json.error) {
      throw { error: json.error || { message: "The payment service answered " + response.status + "." } };
    }
    return json;
  }

  function declined(pi, fallback) {
    var last = (pi && pi.last_payment_error) || {};
    return { error: { type: "card_error", code: last.code, message: last.message || fallback, payment_intent: pi } };
  }

  window.Stripe = function (key, options) {
    var stripe = mockStripe(key, options);
    var mockConfirm = stripe.confirmCardPayment;

    stripe.confirmCardPayment = async function (clientSecret, data) {
      try {
        var intentId = clientSecret.match(/^(pi_\w+)_secret_/)[1];
        var pm = (data && data.payment_method) || {};
        var pmId = typeof pm === "string" ? pm : null;
        if (!pmId) {
          var card = pm.card && pm.card.value && pm.card.value.card;
          if (!card || !card.number) {
            return { error: { type: "validation_error", message: "Your card number is incomplete." } };
          }
          var params = {
            type: "card",
            "card[number]": card.number,
            "card[exp_month]": card.exp_month,
            "card[exp_year]": card.exp_year,
            "card[cvc]": card.cvc,
          };
          var billing = pm.billing_details || {};
          if (billing.name) params["billing_details[name]"] = billing.name;
          if (billing.email) params["billing_details[email]"] = billing.email;
          pmId = (await call("POST", "/v1/payment_methods", params)).id;
        }
        await call("POST", "/v1/payment_intents/" + intentId, { payment_method: pmId });
        var intent;
        try {
          intent = await call("POST", "/v1/payment_intents/" + intentId + "/confirm", {});
        } catch (err) {
          var current = await call("GET", "/v1/payment_intents/" + intentId);
          return declined(current, (err.error && err.error.message) || "Your card was declined.");
        }
        if (intent.status === "requires_action") {
          var result = await mockConfirm(clientSecret, data);  // the mock's 3-D Secure dialog
          if (result.paymentIntent && result.paymentIntent.status === "requires_payment_method") {
            return declined(result.paymentIntent, "We could not authenticate your card.");
          }
          return result;
        }
        if (intent.status === "requires_payment_method") return declined(intent, "Your card was declined.");
        return { paymentIntent: intent };
      } catch (err) {
        return { error: (err && err.error) || { message: String(err) } };
      }
    };
    return stripe;
  };
})();
