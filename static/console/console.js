/* Tiny per-page behaviour: dialogs, copy buttons, tabs, fallback ordering. */
(function () {
  "use strict";

  function renumber(list) {
    list.querySelectorAll("li").forEach(function (li, i) {
      var pos = li.querySelector(".pos");
      if (pos) pos.textContent = i + 1;
    });
  }

  function initSortables(root) {
    root = root || document;
    var lists = Array.prototype.slice.call(root.querySelectorAll("[data-sortable]"));
    if (root.matches && root.matches("[data-sortable]")) lists.push(root);
    lists.forEach(function (list) {
      if (list.dataset.sortableReady) return;
      list.dataset.sortableReady = "1";
      if (window.Sortable) {
        window.Sortable.create(list, {
          handle: ".handle", animation: 120, forceFallback: true,
          chosenClass: "chosen", ghostClass: "sortable-ghost",
          onEnd: function () { renumber(list); }
        });
      }
    });
  }

  document.addEventListener("click", function (event) {
    var move = event.target.closest("[data-move]");
    if (move) {
      event.preventDefault();
      var li = move.closest("li"), list = li.parentElement;
      if (move.dataset.move === "up" && li.previousElementSibling) list.insertBefore(li, li.previousElementSibling);
      if (move.dataset.move === "down" && li.nextElementSibling) list.insertBefore(li.nextElementSibling, li);
      renumber(list);
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      event.preventDefault();
      var source = document.querySelector(copy.dataset.copy);
      var text = source.value !== undefined ? source.value : source.textContent;
      var done = function () {
        var old = copy.textContent;
        copy.textContent = "Copied ✓";
        setTimeout(function () { copy.textContent = old; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done);
      } else {
        if (source.select) source.select();
        document.execCommand("copy");
        done();
      }
      return;
    }
    var tab = event.target.closest("[role=tab]");
    if (tab) {
      var tabs = tab.closest("[data-tabs]");
      tabs.querySelectorAll("[role=tab]").forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
      });
      return;
    }
    var close = event.target.closest("[data-close-dialog]");
    if (close) {
      var dialog = close.closest("dialog");
      if (dialog) { event.preventDefault(); dialog.close(); }
    }
  });

  document.addEventListener("htmx:load", function (event) { initSortables(event.detail.elt); });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target.tagName === "DIALOG" || target.closest("dialog")) {
      var dialog = target.tagName === "DIALOG" ? target : target.closest("dialog");
      if (!dialog.open) dialog.showModal();
    }
  });

  document.addEventListener("DOMContentLoaded", function () { initSortables(document); });
})();
