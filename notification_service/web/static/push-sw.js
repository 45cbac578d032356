/*
 * push-sw.js: the service worker that shows Web Push notifications from the
 * Browser Notification Service.
 *
 * A push is JSON {title, body, icon, url, tag, data, ...} or plain text (shown
 * as the body). A click focuses a window already showing `url`, or opens it.
 * When the browser replaces the subscription (pushsubscriptionchange), the new
 * one is sent to the server with `replaces` so it keeps its id, group and
 * channels. Text is never rendered as HTML, and only http(s) URLs are opened.
 */
'use strict';

const DEFAULT_TITLE = 'Notification';
// This worker is served at <base>/static/push-sw.js: every URL it uses is relative
// to the server's base, so it works under a reverse proxy's sub-path.
const BASE = new URL('../', self.location.href);

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

function text(value) {
  return typeof value === 'string' ? value : undefined;
}

function readPush(event) {
  if (!event.data) return {};
  const raw = event.data.text();
  try {
    const value = JSON.parse(raw);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value;
  } catch (_notJson) { /* a plain-text message */ }
  return { body: raw };
}

self.addEventListener('push', (event) => {
  const note = readPush(event);
  const options = {
    body: text(note.body),
    icon: text(note.icon),
    tag: text(note.tag),
    data: { url: text(note.url), note },
  };
  event.waitUntil(Promise.all([
    self.registration.showNotification(text(note.title) || DEFAULT_TITLE, options),
    // Open pages may show it too (sources/push.html logs it).
    self.clients.matchAll({ type: 'window', includeUncontrolled: true })
      .then((windows) => windows.forEach((w) => w.postMessage({ type: 'push', note }))),
  ]));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const target = new URL(data.url || '', BASE);
  if (target.protocol !== 'https:' && target.protocol !== 'http:') return;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of windows) {
      if (client.url === target.href && 'focus' in client) return client.focus();
    }
    if (self.clients.openWindow) return self.clients.openWindow(target.href);
    return undefined;
  })());
});

function urlBase64ToUint8Array(base64) {
  const padded = (base64 + '='.repeat((4 - (base64.length % 4)) % 4))
    .replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil((async () => {
    let subscription = event.newSubscription;
    if (!subscription) {
      const answer = await fetch(new URL('webpush/public-key', BASE));
      const { publicKey } = await answer.json();
      subscription = await self.registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: urlBase64ToUint8Array(publicKey),
      });
    }
    const body = subscription.toJSON();
    if (event.oldSubscription) body.replaces = event.oldSubscription.endpoint;
    await fetch(new URL('webpush/subscriptions', BASE), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  })());
});
