// Buurtpeil resident app: progressive enhancement only. Every page works without this file,
// except turning on Web Push and the map pickers. No inline script anywhere (strict CSP).
(function () {
  "use strict";
  document.documentElement.classList.add("bp-js");
  var body = document.body;
  var csrf = body.getAttribute("data-csrf") || "";

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  // --- the error summary takes the focus, as in GOV.UK forms ------------------------------
  function focusErrors() {
    var summary = document.querySelector("[data-focus-on-load]");
    if (summary) summary.focus();
  }

  // --- conditional questions appear as they are answered ---------------------------------
  function conditions(form) {
    var dependents = form.querySelectorAll("[data-show-if]");
    if (!dependents.length) return;
    function chosen(name) {
      return Array.prototype.map.call(
        form.querySelectorAll('input[name="' + name + '"]:checked'),
        function (input) { return input.value; });
    }
    function update() {
      dependents.forEach(function (question) {
        var anyOf = JSON.parse(question.getAttribute("data-any-of") || "[]").map(String);
        var source = form.querySelector('[name="' + question.getAttribute("data-show-if") + '"]');
        var sourceShown = source && !source.disabled;
        var met = sourceShown && chosen(question.getAttribute("data-show-if")).some(function (v) {
          return anyOf.indexOf(v) >= 0;
        });
        question.hidden = !met;
        question.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = !met; });
      });
    }
    form.addEventListener("change", update);
    update();
  }

  // --- an exclusive option ("weet niet") clears the others, and the other way round -------
  function exclusives(form) {
    form.addEventListener("change", function (event) {
      var box = event.target;
      if (box.type !== "checkbox" || !box.checked) return;
      var group = form.querySelectorAll('input[type="checkbox"][name="' + box.name + '"]');
      group.forEach(function (other) {
        if (other === box) return;
        if (box.hasAttribute("data-exclusive") || other.hasAttribute("data-exclusive")) other.checked = false;
      });
    });
  }

  // --- the draft stays on this device until it is sent ------------------------------------
  var DRAFT = "bp-draft:";
  function saveDraft(form) {
    var data = [];
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrf_token") data.push([name, String(value)]);
    });
    try { localStorage.setItem(DRAFT + form.getAttribute("data-draft"), JSON.stringify(data)); } catch (e) { /* full or private */ }
  }
  function restoreDraft(form) {
    var stored;
    try { stored = JSON.parse(localStorage.getItem(DRAFT + form.getAttribute("data-draft")) || "null"); } catch (e) { stored = null; }
    if (!stored || !stored.length) return false;
    // Only restore into a fresh form (after an error the server's values are newer).
    if (document.querySelector("[data-focus-on-load]")) return false;
    form.querySelectorAll("input[type=radio], input[type=checkbox]").forEach(function (el) { el.checked = false; });
    stored.forEach(function (pair) {
      var name = pair[0], value = pair[1];
      var fields = form.querySelectorAll('[name="' + name + '"]');
      fields.forEach(function (el) {
        if (el.type === "radio" || el.type === "checkbox") { if (el.value === value) el.checked = true; }
        else el.value = value;
      });
    });
    return true;
  }
  function drafts() {
    var form = document.querySelector("form[data-draft]");
    if (form) {
      var restored = restoreDraft(form);
      var notice = document.querySelector("[data-draft-notice]");
      if (restored) {
        form.dispatchEvent(new Event("change"));  // conditional questions follow the draft
        if (notice) notice.hidden = false;
      }
      form.addEventListener("input", function () { saveDraft(form); });
      form.addEventListener("change", function () { saveDraft(form); });
      var clear = document.querySelector("[data-draft-clear]");
      if (clear) clear.addEventListener("click", function () {
        localStorage.removeItem(DRAFT + form.getAttribute("data-draft"));
        form.reset();
        form.dispatchEvent(new Event("change"));
        if (notice) notice.hidden = true;
      });
    }
    if (document.querySelector("[data-clear-all-drafts]")) {  // signed out, or left the panel
      try {
        Object.keys(localStorage).forEach(function (key) { if (key.indexOf(DRAFT) === 0) localStorage.removeItem(key); });
      } catch (e) { /* ignore */ }
    }
    document.querySelectorAll("[data-clear-draft]").forEach(function (el) {
      var id = el.getAttribute("data-clear-draft");
      if (id) { try { localStorage.removeItem(DRAFT + id); } catch (e) { /* ignore */ } }
    });
    document.querySelectorAll("[data-draft-badge]").forEach(function (el) {
      try { if (localStorage.getItem(DRAFT + el.getAttribute("data-draft-badge"))) el.hidden = false; } catch (e) { /* ignore */ }
    });
  }

  // --- Web Push through the service worker -------------------------------------------------
  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }
  function pushSection(section) {
    var status = section.querySelector("[data-push-status]");
    var button = section.querySelector("[data-push-enable]");
    function say(key) {
      var text = section.querySelector('[data-push-texts]').content.querySelector('[data-text="' + key + '"]');
      status.textContent = text ? text.textContent : key;
      status.setAttribute("data-state", key);
    }
    status.textContent = "";
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) { say("unsupported"); button.hidden = true; return; }
    var scope = section.getAttribute("data-scope");
    navigator.serviceWorker.getRegistration(scope).then(function (reg) {
      return reg && reg.pushManager.getSubscription();
    }).then(function (sub) { if (sub && Notification.permission === "granted") say("on"); }).catch(function () {});
    button.addEventListener("click", function () {
      button.disabled = true;
      navigator.serviceWorker.register(section.getAttribute("data-sw"), { scope: scope })
        .then(function () { return navigator.serviceWorker.ready; })
        .then(function () { return navigator.serviceWorker.getRegistration(scope); })
        .then(function (reg) {
          return Notification.requestPermission().then(function (permission) {
            if (permission !== "granted") throw new Error("denied");
            return reg.pushManager.subscribe({
              userVisibleOnly: true,
              applicationServerKey: keyBytes(section.getAttribute("data-vapid-key")),
            });
          });
        })
        .then(function (subscription) {
          var json = subscription.toJSON();
          var data = new FormData();
          data.append("csrf_token", csrf);
          data.append("endpoint", json.endpoint);
          data.append("p256dh", json.keys.p256dh);
          data.append("auth", json.keys.auth);
          return fetch(section.getAttribute("data-register"), {
            method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
            headers: { "X-CSRF-Token": csrf },
          });
        })
        .then(function (response) {
          if (!response.ok) throw new Error("register " + response.status);
          say("on");
        })
        .catch(function (error) {
          say(String(error && error.message) === "denied" ? "denied" : "failed");
        })
        .then(function () { button.disabled = false; });
    });
  }

  // --- maps (Leaflet, the buurt polygons as vectors; tiles only if configured) -------------
  var POLYGON = { color: "#1f4e79", weight: 1, fillOpacity: 0.08 };
  var CHOSEN = { color: "#0b0c0c", weight: 3, fillOpacity: 0.25 };
  function baseMap(el, done) {
    if (!window.L) return;
    var map = L.map(el, { scrollWheelZoom: false });
    var tiles = el.getAttribute("data-tiles");
    if (tiles) L.tileLayer(tiles, { attribution: el.getAttribute("data-attribution") || "", maxZoom: 19 }).addTo(map);
    fetch(el.getAttribute("data-geojson"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var layer = L.geoJSON(data, { style: function () { return POLYGON; } }).addTo(map);
        map.fitBounds(layer.getBounds());
        done(map, layer);
      });
  }
  function locationMap(el) {
    var id = el.getAttribute("data-question");
    var lat = document.getElementById("q-" + id), lon = document.getElementById("q-" + id + "-lon");
    baseMap(el, function (map, layer) {
      var marker = null;
      function place(latlng, fromMap) {
        if (!marker) marker = L.circleMarker(latlng, { radius: 9, color: "#0b0c0c", weight: 3, fillColor: "#ffdd00", fillOpacity: 1 }).addTo(map);
        else marker.setLatLng(latlng);
        if (fromMap) {
          lat.value = latlng.lat.toFixed(6); lon.value = latlng.lng.toFixed(6);
          lat.dispatchEvent(new Event("input", { bubbles: true }));
        }
      }
      function fromInputs() {
        var a = parseFloat(String(lat.value).replace(",", ".")), b = parseFloat(String(lon.value).replace(",", "."));
        if (!isNaN(a) && !isNaN(b)) place(L.latLng(a, b), false);
      }
      map.on("click", function (e) { place(e.latlng, true); });
      layer.on("click", function (e) { place(e.latlng, true); });
      lat.addEventListener("change", fromInputs); lon.addEventListener("change", fromInputs);
      fromInputs();
      var use = document.querySelector('[data-use-location="' + id + '"]');
      if (use && navigator.geolocation) use.addEventListener("click", function () {
        navigator.geolocation.getCurrentPosition(function (pos) {
          var latlng = L.latLng(pos.coords.latitude, pos.coords.longitude);
          place(latlng, true); map.setView(latlng, 16);
        });
      });
    });
  }
  function buurtPicker(section) {
    var select = document.getElementById("f-buurt_code");
    var result = section.querySelector("[data-locate-result]");
    var base = body.getAttribute("data-app-base");
    function choose(code) {
      select.value = code;
      select.dispatchEvent(new Event("change", { bubbles: true }));
    }
    section.addEventListener("click", function (event) {
      var confirm = event.target.closest("[data-confirm-buurt]");
      if (confirm) { choose(confirm.getAttribute("data-confirm-buurt")); select.focus(); }
    });
    var button = section.querySelector("[data-locate-button]");
    if (button && navigator.geolocation) button.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (pos) {
        var url = base + "buurt-zoeken?lat=" + pos.coords.latitude + "&lon=" + pos.coords.longitude;
        fetch(url, { credentials: "same-origin" }).then(function (r) { return r.text(); })
          .then(function (html) { result.innerHTML = html; });
      });
    });
    var el = section.querySelector("[data-buurt-map]");
    if (el) baseMap(el, function (map, layer) {
      function highlight() {
        layer.eachLayer(function (l) { l.setStyle(l.feature.properties.code === select.value ? CHOSEN : POLYGON); });
      }
      layer.on("click", function (e) { choose(e.layer.feature.properties.code); highlight(); });
      select.addEventListener("change", highlight);
      highlight();
    });
  }

  // --- staff: a click on the audience map changes the list (the list is the form; the map
  // follows it when htmx fetches the reach again). A buurt's shape ticks or unticks that
  // buurt; inside a wijk ticked whole, it unticks the wijk and ticks the wijk's other
  // buurten (the map shows what is chosen, a click takes the buurt out). A wijk's name ticks
  // or unticks the whole wijk; its buurten ticked one by one are then part of it. ---------
  function audienceMap(root) {
    function buurtenOf(wijk) {
      return root.querySelectorAll('input[data-wijk="' + wijk + '"]');
    }
    root.addEventListener("click", function (event) {
      if (!event.target.closest) return;
      var label = event.target.closest("svg [data-wijk-code]");
      var path = label ? null : event.target.closest("svg path[data-code]");
      if (!label && !path) return;
      var box = document.getElementById("a-" + (label || path).getAttribute(label ? "data-wijk-code" : "data-code"));
      if (!box) return;
      var wijk = path && box.getAttribute("data-wijk") ? document.getElementById("a-" + box.getAttribute("data-wijk")) : null;
      if (label) {
        box.checked = !box.checked;
        if (box.checked) buurtenOf(box.value).forEach(function (b) { b.checked = false; });
      } else if (wijk && wijk.checked) {
        wijk.checked = false;
        buurtenOf(wijk.value).forEach(function (b) { b.checked = b !== box; });
      } else {
        box.checked = !box.checked;
      }
      var sample = document.getElementById("f-audience-sample");
      var areas = document.getElementById("f-audience-areas");
      if (areas && !(sample && sample.checked)) areas.checked = true;
      var details = path ? box.closest("details") : null;
      if (details) details.open = true;
      box.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }

  // --- staff: a region's buurten picked on the map (the list is the form): a click ticks the
  // buurt in the list, and the map follows every tick (no fragment to fetch) ---------------
  function pickMap(root) {
    var svg = root.querySelector("svg.bp-map-svg");
    if (!svg) return;
    var chosen = "#1f4e79", other = "#f3f2f1";  // web/charts.py CHOSEN and NO_DATA
    root.addEventListener("change", function (event) {
      var box = event.target;
      if (!box.matches || !box.matches("input[type=checkbox][name=buurt_codes]")) return;
      var path = svg.querySelector('path[data-code="' + box.value + '"]');
      if (path) path.setAttribute("fill", box.checked ? chosen : other);
    });
  }

  ready(function () {
    focusErrors();
    document.querySelectorAll(".bp-audience").forEach(audienceMap);
    document.querySelectorAll("[data-pick-map]").forEach(pickMap);
    document.querySelectorAll("form").forEach(function (form) { conditions(form); exclusives(form); });
    drafts();
    document.querySelectorAll("[data-push]").forEach(pushSection);
    document.querySelectorAll("[data-location-map]").forEach(locationMap);
    document.querySelectorAll("[data-locate]").forEach(buurtPicker);
  });
})();
