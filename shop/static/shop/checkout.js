// Disable "Place order" once clicked. The hidden per-form token already makes a second submit harmless;
// this just tells the customer their click was taken.
(function () {
  "use strict";
  var form = document.querySelector(".checkout form");
  if (!form) return;
  var button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", function () {
    // Deferred so the click still submits the form before the button goes grey.
    setTimeout(function () { button.disabled = true; }, 0);
  });
  // Coming back with the browser's Back button must not leave the button dead.
  window.addEventListener("pageshow", function () { button.disabled = false; });
})();
