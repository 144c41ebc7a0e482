// Light/dark theme. Loaded as a classic (blocking) script in <head> so the chosen theme is set
// before the first paint. No stored choice: the system preference (prefers-color-scheme) decides.
(function () {
  "use strict";
  var KEY = "identix-theme";
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function stored() {
    try {
      var v = window.localStorage.getItem(KEY);
      return v === "light" || v === "dark" ? v : null;
    } catch (e) {
      return null; // storage disabled: follow the system
    }
  }

  function effective() {
    return stored() || (media && media.matches ? "dark" : "light");
  }

  function apply() {
    var choice = stored();
    if (choice) root.setAttribute("data-theme", choice);
    else root.removeAttribute("data-theme");
    var now = effective();
    var buttons = document.querySelectorAll("[data-theme-toggle]");
    for (var i = 0; i < buttons.length; i++) {
      var next = now === "dark" ? "light" : "dark";
      buttons[i].setAttribute("aria-pressed", now === "dark" ? "true" : "false");
      buttons[i].setAttribute("title", "Switch to the " + next + " theme");
    }
    document.dispatchEvent(new CustomEvent("identix:theme", { detail: { theme: now } }));
  }

  function set(next) {
    try {
      window.localStorage.setItem(KEY, next);
    } catch (e) {
      root.setAttribute("data-theme", next); // not remembered, but still switched
      return;
    }
    apply();
  }

  function toggle() {
    set(effective() === "dark" ? "light" : "dark");
  }

  apply();
  if (media && media.addEventListener) media.addEventListener("change", apply);
  document.addEventListener("DOMContentLoaded", function () {
    apply();
    document.addEventListener("click", function (ev) {
      var btn = ev.target.closest ? ev.target.closest("[data-theme-toggle]") : null;
      if (btn) toggle();
    });
  });
  window.identixTheme = { effective: effective, toggle: toggle, set: set };
})();
