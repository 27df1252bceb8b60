/* Small progressive enhancements shared by every page (no framework; the pages work without it). */
(function () {
  "use strict";
  // Patient information: folded on phones (short first screen), unfolded on wide screens.
  if (window.matchMedia("(min-width: 720px)").matches) {
    document.querySelectorAll("details.info-details").forEach(function (d) { d.open = true; });
  }
  // A link to a folded section (the contents list, a search hit) unfolds it.
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    var details = target && target.querySelector("details.info-details");
    if (details) { details.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  // Toasts (add-to-cart confirmations) close on their button or on Escape.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (button) { var toast = button.closest(".toast"); if (toast) { toast.remove(); } }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { document.querySelectorAll(".toast").forEach(function (t) { t.remove(); }); }
  });
  // The receipt's Print button.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  });
  // Cart: htmx replaces the whole cart after Update or Remove; put focus back where the user was
  // (the line's Update button, or the cart heading when the line is gone) instead of the page body.
  var cartAction = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.target.closest && event.target.closest("form.cart-update, form.cart-remove");
    var line = form && form.closest(".cart-line");
    cartAction = line ? { remove: form.classList.contains("cart-remove"), line: line.id } : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!cartAction) { return; }
    var line = !cartAction.remove && document.getElementById(cartAction.line);
    var target = (line && line.querySelector(".cart-update button")) || document.getElementById("cart-title");
    cartAction = null;
    if (target) { target.focus(); }
  });
})();
