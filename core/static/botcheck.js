/* The public forms' bot check (core/botcheck.py): solve the page's challenge in a Web Worker
   as soon as the page opens, and send the form once it is solved and at least the minimum
   time has passed since the page was rendered. Without this script the form says it needs
   JavaScript (a <noscript> note) and the server refuses it with the same explanation. */
(function () {
  "use strict";
  var boxes = document.querySelectorAll("[data-botcheck]");
  Array.prototype.forEach.call(boxes, function (box) {
    var form = box.closest("form");
    if (!form) return;
    var opened = Date.now();
    var minMs = parseInt(box.dataset.minMs || "0", 10);
    var difficulty = parseInt(box.dataset.difficulty || "0", 10);
    var challenge = form.querySelector("input[name=bot_challenge]").value;
    var answer = form.querySelector("input[name=bot_solution]");
    var status = box.querySelector("[data-botcheck-status]");
    var waiting = false;
    var solved = false;

    function send() {
      var left = minMs - (Date.now() - opened);
      if (left > 0) { setTimeout(send, left); return; }
      form.submit();
    }
    function done(solution) {
      answer.value = solution;
      solved = true;
      if (waiting) send();
    }
    try {
      var worker = new Worker(box.dataset.worker);
      worker.onmessage = function (event) { done(event.data.solution); worker.terminate(); };
      worker.onerror = function () { status.textContent = "This browser could not run the check that a person sends this form. Please try another browser."; };
      worker.postMessage({challenge: challenge, difficulty: difficulty});
    } catch (e) {
      status.textContent = "This browser could not run the check that a person sends this form. Please try another browser.";
    }
    form.addEventListener("submit", function (event) {
      if (solved && Date.now() - opened >= minMs) return;
      event.preventDefault();
      if (waiting) return;
      waiting = true;
      var button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      status.textContent = "Checking that a person sends this form…";
      if (solved) send();
    });
  });
})();
