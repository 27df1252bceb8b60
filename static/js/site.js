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
})();
