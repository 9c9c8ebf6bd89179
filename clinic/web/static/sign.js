/* Sign a prescription in the browser with the clinician's Ed25519 key (WebCrypto).

   The page (templates/program.html) holds, in #sign, `data-canonical`: the base64 of the
   exact bytes schedules/signing.py signs (canonical_json of the checked draft), made by
   the server; this script never builds JSON itself. The private key is read from the file
   `homeapp rx keygen` writes (PEM "PRIVATE KEY", PKCS#8, unencrypted) or made here, and
   never leaves the browser: only the signature {alg, key_id, value} goes into the publish
   form. The key id is computed as signing.key_id does: SHA-256 of the raw 32-byte public
   key, first 16 bytes, as 8 groups of 4 hex digits.

   Where WebCrypto has no Ed25519 the page says so and the unsigned download, `homeapp rx
   sign` and the upload remain (they need no script). No build step, no library. */
(function () {
  "use strict";
  var root = document.getElementById("sign");
  if (!root) { return; }
  var result = document.getElementById("sign-result");
  var publish = document.getElementById("publish");
  var signatureField = document.getElementById("signature");
  var keyInput = document.getElementById("keyfile");
  var signButton = document.getElementById("sign-button");
  var newKeyButton = document.getElementById("newkey-button");
  var registered = (root.dataset.keys || "").split(" ").filter(Boolean);
  var ED = { name: "Ed25519" };
  var madeKey = null;   // a key made in this browser, usable without choosing a file

  function say(text, bad) {
    result.textContent = text;
    result.className = bad ? "error" : "ok";
  }
  /* A sentence the page gave in its language: data-msg-NAME, with {key} filled in. */
  function msg(name, key) {
    var text = root.dataset["msg" + name.charAt(0).toUpperCase() + name.slice(1)] || name;
    return text.replace("{key}", key || "");
  }

  function fromB64(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function toB64(bytes) {
    var bin = "";
    bytes = new Uint8Array(bytes);
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin);
  }
  function fromB64url(text) {
    text = text.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) { text += "="; }
    return fromB64(text);
  }
  function pem(label, der) {
    var body = toB64(der).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
    return "-----BEGIN " + label + "-----\n" + body + "\n-----END " + label + "-----\n";
  }

  async function keyId(rawPublic) {
    var digest = new Uint8Array(await crypto.subtle.digest("SHA-256", rawPublic));
    var hex = "";
    for (var i = 0; i < 16; i++) { hex += digest[i].toString(16).padStart(2, "0"); }
    return hex.match(/.{4}/g).join("-");
  }

  async function supported() {
    if (!window.crypto || !crypto.subtle) { return false; }
    try {
      await crypto.subtle.generateKey(ED, false, ["sign", "verify"]);
      return true;
    } catch (e) {
      return false;
    }
  }

  /* The private key in a PEM file, and its raw public key (from the JWK export's x). */
  async function readKeyFile(file) {
    var text = await file.text();
    var m = text.match(/-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/);
    if (!m) { throw new Error(msg("badkey")); }
    if (m[1] === "PUBLIC KEY") { throw new Error(msg("public")); }
    if (m[1] !== "PRIVATE KEY") { throw new Error(msg("badkey")); }
    var key;
    try {
      key = await crypto.subtle.importKey("pkcs8", fromB64(m[2].replace(/\s+/g, "")), ED, true, ["sign"]);
    } catch (e) {
      throw new Error(msg("badkey"));
    }
    var jwk = await crypto.subtle.exportKey("jwk", key);
    return { key: key, raw: fromB64url(jwk.x) };
  }

  async function sign(pair) {
    var bytes = fromB64(root.dataset.canonical);
    var value = await crypto.subtle.sign(ED, pair.key, bytes);
    var kid = await keyId(pair.raw);
    signatureField.value = JSON.stringify({ alg: "ed25519", key_id: kid, value: toB64(value) });
    publish.disabled = false;
    if (registered.length && registered.indexOf(kid) < 0) {
      say(msg("unregistered", kid), true);
    } else {
      say(msg("signed", kid), false);
    }
    publish.focus();
  }

  function download(name, text) {
    var url = URL.createObjectURL(new Blob([text], { type: "application/x-pem-file" }));
    var a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  signButton.addEventListener("click", async function () {
    try {
      var file = keyInput.files && keyInput.files[0];
      if (!file && !madeKey) { say(msg("nokey"), true); keyInput.focus(); return; }
      await sign(file ? await readKeyFile(file) : madeKey);
    } catch (e) {
      signatureField.value = "";
      publish.disabled = true;
      say(e.message, true);
    }
  });

  newKeyButton.addEventListener("click", async function () {
    try {
      var pair = await crypto.subtle.generateKey(ED, true, ["sign", "verify"]);
      var raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      download("clinician.key", pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey)));
      download("clinician.pub", pem("PUBLIC KEY", await crypto.subtle.exportKey("spki", pair.publicKey)));
      madeKey = { key: pair.privateKey, raw: raw };
      say(msg("newkey", await keyId(raw)), false);
    } catch (e) {
      say(e.message, true);
    }
  });

  /* Show what the bytes to be signed say (display only: the page shows the form, but a
     signature covers these bytes, so the clinician sees them decoded before signing). */
  function shown(v) {
    if (v && typeof v === "object") { return v.value + " (" + v.min + "–" + v.max + ")"; }
    return String(v);
  }
  function describe() {
    var box = document.getElementById("signing-what");
    if (!box) { return; }
    var rx;
    try {
      rx = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromB64(root.dataset.canonical)));
    } catch (e) {
      box.textContent = msg("unreadable");
      return;
    }
    var list = document.createElement("ul");
    function line(text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    }
    line(rx.id + " · " + rx.patient_id + " · " + rx.issued + " – " + rx.expires +
         (rx.valid_from ? " (" + rx.valid_from + ")" : "") + " · " + rx.sessions_per_week + "/" +
         msg("week") + ", ≤ " + rx.max_sessions_per_day + "/" + msg("day") + ", ≥ " + rx.min_hours_between + " h");
    (rx.channels || []).forEach(function (c, i) {
      line((i + 1) + ". " + (c.label || "") + ": ≤ " + shown(c.max_ma) + " mA");
    });
    (rx.blocks || []).forEach(function (b, i) {
      line((i + 1) + ". " + (b.label || "") + ": " + shown(b.minutes) + " min, " + shown(b.hz) + " Hz, " +
           shown(b.pulse_us) + " µs, " + shown(b.on_s) + " s / " + shown(b.off_s) + " s, " +
           shown(b.ramp_up_s) + " s ↗ " + shown(b.ramp_down_s) + " s ↘" +
           (b.pattern && b.pattern !== "synchronous" ? ", " + b.pattern : ""));
    });
    box.appendChild(list);
  }
  describe();

  supported().then(function (ok) {
    root.dataset.ed25519 = ok ? "yes" : "no";
    if (!ok) {
      document.getElementById("sign-unsupported").hidden = false;
      signButton.disabled = true;
      newKeyButton.disabled = true;
      keyInput.disabled = true;
      var fallback = document.getElementById("fallback");
      if (fallback) { fallback.open = true; }
    }
  });
})();
