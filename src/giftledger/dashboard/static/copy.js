// A "Copy" button beside each value marked data-copy (a password shown once, its username). Progressive
// enhancement: without JavaScript the page shows the values, selectable, and no button.
"use strict";
(function () {
  function copied(button) {
    button.textContent = "Copied";
    button.setAttribute("aria-label", button.dataset.label + " copied");
  }
  function copyText(code, button) {
    var text = code.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button); }, function () { select(code); });
      return;
    }
    select(code);
    if (document.execCommand && document.execCommand("copy")) { copied(button); }
  }
  function select(code) {
    var range = document.createRange();
    range.selectNodeContents(code);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.querySelectorAll("[data-copy]").forEach(function (code) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button small secondary copy-button";
    button.textContent = "Copy";
    button.dataset.label = "Copy the " + code.dataset.copy;
    button.setAttribute("aria-label", button.dataset.label);
    button.addEventListener("click", function () { copyText(code, button); });
    code.insertAdjacentElement("afterend", button);
  });
})();
