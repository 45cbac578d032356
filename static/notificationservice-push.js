/*
 * notificationservice-push.js: Web Push for pages of the Browser Notification
 * Service. Registers static/push-sw.js, subscribes with the server's VAPID key
 * and POSTs the subscription with an optional id, group and channels, so the
 * server can push to this browser even when the page is closed.
 *
 *   await NotificationServicePush.subscribe({ channels: ['1234'] });
 *   await NotificationServicePush.subscribe({ id: 'alice', group: 'staff' });
 *   await NotificationServicePush.unsubscribe();
 *
 * Self-contained (no socket.io needed); to be folded into notificationservice.js.
 */
(function (global) {
  'use strict';

  const WORKER = '/static/push-sw.js';

  function urlBase64ToUint8Array(base64) {
    const padded = (base64 + '='.repeat((4 - (base64.length % 4)) % 4))
      .replace(/-/g, '+').replace(/_/g, '/');
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function sameKey(buffer, base64) {
    if (!buffer) return false;
    const a = new Uint8Array(buffer);
    const b = urlBase64ToUint8Array(base64);
    return a.length === b.length && a.every((value, i) => value === b[i]);
  }

  function supported() {
    return 'serviceWorker' in navigator && 'PushManager' in global && 'Notification' in global;
  }

  async function api(server, path, options) {
    const response = await fetch(server + path, options);
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status} from ${path}`);
    return answer;
  }

  // The worker's scope is /static/, so pages elsewhere are not controlled by it
  // and navigator.serviceWorker.ready would never resolve: wait for this
  // registration's worker to activate instead (push needs no control of pages).
  async function registration(server) {
    const reg = await navigator.serviceWorker.register(server + WORKER);
    const worker = reg.installing || reg.waiting || reg.active;
    if (worker && worker.state !== 'activated') {
      await new Promise((resolve) => {
        worker.addEventListener('statechange', () => {
          if (worker.state === 'activated') resolve();
        });
      });
    }
    return reg;
  }

  /**
   * Ask permission, subscribe and register with the server.
   * options: {id, group, channels: [...], secret, server: 'https://host' (default: this origin)}
   * Resolves to {subscription, answer} where answer is the server's JSON.
   */
  async function subscribe(options = {}) {
    if (!supported()) throw new Error('This browser cannot receive Web Push notifications.');
    const server = options.server || '';
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') throw new Error(`Notifications are not allowed (${permission}).`);
    const { publicKey } = await api(server, '/webpush/public-key');
    const reg = await registration(server);
    let subscription = await reg.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options.applicationServerKey, publicKey)) {
      await subscription.unsubscribe(); // made for another key: the server rotated it
      subscription = null;
    }
    if (!subscription) {
      subscription = await reg.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: urlBase64ToUint8Array(publicKey),
      });
    }
    const body = subscription.toJSON();
    for (const key of ['id', 'group', 'channels', 'secret']) {
      if (options[key] !== undefined) body[key] = options[key];
    }
    const answer = await api(server, '/webpush/subscriptions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { subscription, answer };
  }

  /** Forget this browser's subscription on the server and in the browser. */
  async function unsubscribe(options = {}) {
    if (!supported()) return false;
    const server = options.server || '';
    const reg = await navigator.serviceWorker.getRegistration(server + WORKER);
    const subscription = reg && await reg.pushManager.getSubscription();
    if (!subscription) return false;
    await fetch(server + '/webpush/subscriptions', {
      method: 'DELETE',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ endpoint: subscription.endpoint }),
    });
    return subscription.unsubscribe();
  }

  /** Call fn(note) for every push the service worker receives while this page is open. */
  function onPush(fn) {
    if (!supported()) return;
    navigator.serviceWorker.addEventListener('message', (event) => {
      if (event.data && event.data.type === 'push') fn(event.data.note);
    });
  }

  global.NotificationServicePush = {
    subscribe, unsubscribe, onPush, supported, urlBase64ToUint8Array, registration,
  };
})(window);
