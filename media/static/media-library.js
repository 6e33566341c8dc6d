// The Media page's upload with a progress bar (the form still works without this script).
(function () {
  "use strict";
  var form = document.getElementById("media-upload");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var box = document.getElementById("media-progress");
  var bar = box.querySelector("progress");
  var text = document.getElementById("media-progress-text");
  var error = document.getElementById("media-error");
  form.addEventListener("submit", function (event) {
    var input = form.querySelector("input[type=file]");
    if (!input.files.length) return; // the server says what is missing
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        var percent = Math.round((e.loaded / e.total) * 100);
        bar.value = percent;
        text.textContent = percent + " %";
      }
    });
    request.addEventListener("load", function () {
      var answer = {};
      try { answer = JSON.parse(request.responseText); } catch (e) { answer = {}; }
      if (request.status === 201) {
        text.textContent = "Uploaded.";
        window.location.reload();
        return;
      }
      box.hidden = true;
      button.disabled = false;
      error.textContent = answer.error || "The upload failed (" + request.status + ").";
      error.hidden = false;
    });
    request.addEventListener("error", function () {
      box.hidden = true;
      button.disabled = false;
      error.textContent = "The upload failed: the connection was lost. Try again.";
      error.hidden = false;
    });
    error.hidden = true;
    box.hidden = false;
    bar.value = 0;
    text.textContent = "0 %";
    button.disabled = true;
    request.send(new FormData(form));
  });
})();
