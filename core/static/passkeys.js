// Passkeys (WebAuthn) for the second factor: served by the platform, no third party.
// Buttons with data-passkey="register" or data-passkey="login" carry the URLs to call in
// data-options and data-submit; the page's CSRF token is sent in the X-CSRFToken header.
(function () {
  "use strict";

  function toBytes(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(function (data) { data.status = response.status; return data; });
    });
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return {type: item.type, id: toBytes(item.id), transports: item.transports};
    });
  }

  function register(options) {
    options.challenge = toBytes(options.challenge);
    options.user.id = toBytes(options.user.id);
    options.excludeCredentials = descriptors(options.excludeCredentials);
    return navigator.credentials.create({publicKey: options}).then(function (made) {
      return {
        id: made.id, rawId: toText(made.rawId), type: made.type,
        response: {
          clientDataJSON: toText(made.response.clientDataJSON),
          attestationObject: toText(made.response.attestationObject),
          transports: made.response.getTransports ? made.response.getTransports() : [],
        },
      };
    });
  }

  function authenticate(options) {
    options.challenge = toBytes(options.challenge);
    options.allowCredentials = descriptors(options.allowCredentials);
    return navigator.credentials.get({publicKey: options}).then(function (got) {
      return {
        id: got.id, rawId: toText(got.rawId), type: got.type,
        response: {
          clientDataJSON: toText(got.response.clientDataJSON),
          authenticatorData: toText(got.response.authenticatorData),
          signature: toText(got.response.signature),
          userHandle: toText(got.response.userHandle),
        },
      };
    });
  }

  function run(button) {
    var status = document.getElementById(button.getAttribute("aria-describedby"));
    var say = function (text) { if (status) { status.textContent = text; } };
    if (!window.PublicKeyCredential) {
      say("This browser cannot use passkeys.");
      return;
    }
    var kind = button.getAttribute("data-passkey");
    button.disabled = true;
    say(kind === "register" ? "Follow your browser's prompt to create the passkey…" : "Follow your browser's prompt…");
    post(button.getAttribute("data-options")).then(function (options) {
      if (options.error) { throw new Error(options.error); }
      return kind === "register" ? register(options) : authenticate(options);
    }).then(function (credential) {
      var nameInput = document.getElementById("passkey-name");
      return post(button.getAttribute("data-submit"), {
        credential: credential, name: nameInput ? nameInput.value : "",
      });
    }).then(function (answer) {
      if (answer.redirect) { window.location.assign(answer.redirect); return; }
      throw new Error(answer.error || "That did not work.");
    }).catch(function (error) {
      say(error && error.name === "NotAllowedError" ? "Cancelled or timed out. Try again." : String(error.message || error));
      button.disabled = false;
    });
  }

  document.querySelectorAll("button[data-passkey]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { run(button); });
  });
})();
