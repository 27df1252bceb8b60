/* Review page: "Approve with changes" shows the amount it will capture as the packs are changed.
 * A preview only: the server computes and captures the real amount (orders.prescriptions). */
(function () {
  "use strict";
  var data = document.getElementById("changes-prices");
  var shown = document.getElementById("changes-capture");
  var button = document.getElementById("changes-submit");
  if (!data || !shown) return;
  var prices = JSON.parse(data.textContent);
  var money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  function update() {
    var cents = prices.shipping;
    Object.keys(prices.lines).forEach(function (id) {
      var input = document.getElementById(id);
      var packs = input ? parseInt(input.value, 10) : 0;
      if (packs > 0) cents += prices.lines[id] * packs;
    });
    var text = money.format(cents / 100);
    shown.textContent = text;
    if (button) button.textContent = "Approve with changes and charge " + text;
  }
  Object.keys(prices.lines).forEach(function (id) {
    var input = document.getElementById(id);
    if (input) input.addEventListener("input", update);
  });
  update();
})();
