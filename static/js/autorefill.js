/* Auto-refill's consent page: save the card with a Stripe SetupIntent, then send the consent.
 *
 * The card number goes from the Card Element straight to Stripe (localstripe in the demo and the
 * tests); the shop receives only the SetupIntent's id and reads the saved card from Stripe.
 * Nothing here computes money: the price shown is the server's.
 */
(function () {
  "use strict";
  var form = document.getElementById("consent-form");
  if (!form || typeof window.Stripe !== "function") return;
  var button = document.getElementById("consent-button");
  var cardError = document.getElementById("card-error");
  var agreeError = document.getElementById("error-agree");
  var label = button.textContent;
  var stripe = window.Stripe(form.dataset.stripeKey);
  var card = stripe.elements().create("card", { hidePostalCode: true });
  card.mount("#card-element");

  function busy(on) {
    button.disabled = on;
    button.textContent = on ? "Saving your card…" : label;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    cardError.textContent = "";
    agreeError.textContent = "";
    if (!form.elements.agree.checked) {
      agreeError.textContent = "Please tick the box to agree to the terms.";
      form.elements.agree.focus();
      return;
    }
    busy(true);
    try {
      var result = await stripe.confirmCardSetup(form.dataset.clientSecret, {
        payment_method: { card: card },
      });
      if (result.error) {
        cardError.textContent = (result.error.message || "Your card could not be saved.") +
          " Nothing has been charged; you can try again or use another card.";
        busy(false);
        return;
      }
      form.submit();
    } catch (err) {
      cardError.textContent = "We could not reach the payment service. Please check your connection and try again.";
      busy(false);
    }
  });
})();
