// The service worker of a municipality's resident app (scope /app/<code>/): shows the Web Push
// notifications notify sends (the payload is {type, poll_id, ref_id, title, body, lang}) and
// opens the poll or the feedback when the notification is clicked.
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

function targetUrl(data) {
  var scope = self.registration.scope;
  if ((data.type === "invitation" || data.type === "reminder") && data.poll_id) return scope + "peilingen/" + data.poll_id;
  if (data.type === "feedback" && data.ref_id) return scope + "terugkoppeling/" + data.ref_id;
  return scope + "terugkoppeling";
}

self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data ? event.data.text() : "" }; }
  event.waitUntil(self.registration.showNotification(data.title || "Buurtpeil", {
    body: data.body || "",
    lang: data.lang || "nl",
    tag: (data.type || "bericht") + ":" + (data.ref_id || ""),
    icon: self.registration.scope + "icon.svg",
    data: { url: targetUrl(data) },
  }));
});

function openTarget(url) {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    var own = windows.filter(function (w) { return w.url.indexOf(self.registration.scope) === 0 && w.navigate; });
    if (!own.length) return self.clients.openWindow(url);
    return own[0].navigate(url).then(function (moved) {
      var target = moved || own[0];
      return target.focus ? target.focus().catch(function () { return target; }) : target;
    });
  });
}

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var opening = openTarget((event.notification.data && event.notification.data.url) || self.registration.scope);
  // Only a browser's own (trusted) event may be extended; the browser tests dispatch one.
  if (event.isTrusted) event.waitUntil(opening);
});
