/*!
 * notificationservice.js: connect a page to Browser Notification Service.
 *
 * Include after the socket.io client (served locally, no internet needed),
 * from a page in sources/ with URLs relative to the page:
 *   <script src="../static/socket.io.min.js"></script>
 *   <script src="../static/notificationservice.js"></script>
 *
 * It reads `code` from the page URL (?code=1234), connects to the server this
 * script was loaded from (under its --base-path too: the script sits at
 * <base>/static/, so <base>/socket.io/ is the socket.io path), registers the
 * code, and reconnects and re-registers by itself.
 * The global `socket` is kept so existing pages' socket.on('EVENT', fn) work.
 *
 * It remembers the id of the last event per code (localStorage, which survives
 * an OBS source refresh) and sends it on every connect, so the server replays
 * exactly what the page missed. Events carry metadata as a second argument:
 * socket.on('FOLLOW', (data, meta) => ...) with meta = {id, channel, time, replayed}.
 *
 * Options, set before this script loads:
 *   window.NotificationServiceOptions = { server: 'https://host/notify/' }
 *     the server's base URL, when this script is not loaded from it.
 *   window.NotificationServiceOptions = { autoSeen: false }
 *     the page calls NotificationService.seen(meta.id) itself once an event has
 *     really been shown (an overlay that queues alerts), so a reload replays the
 *     alerts that were queued but not shown yet.
 *   window.NotificationServiceOptions = { storage: window.sessionStorage }
 *     where the last event id is kept (default localStorage, shared by every page
 *     of the origin, and in OBS by every browser source: an overlay keeps its own
 *     in sessionStorage, which OBS keeps per source across reloads).
 *
 * API (window.NotificationService):
 *   on(event, fn)          fn(data, meta) for one event name; returns an unsubscribe function
 *   onAny(fn)              fn(eventName, data, meta) for every event
 *   onGap(fn)              fn(notice) when the server could not replay everything missed
 *   seen(id)               remember id as the last event shown (see autoSeen)
 *   lastSeen()             the id remembered last (null if none)
 *   subscribe(channel, {secret})  listen on a channel too (space::name needs its secret);
 *                          resolves with {ok, channel} or {ok: false, error}; asked again,
 *                          with the last event id seen, after every reconnect
 *   unsubscribe(channel)   stop listening on it
 *   channels()             the channels asked for and not refused
 *   onSubscribe(fn)        fn(answer) for every subscribe answer, re-subscriptions included
 *   push                   Web Push (also window.NotificationServicePush, usable without
 *                          socket.io): push.subscribe({id, group, channels}),
 *                          push.unsubscribe(), push.onPush(fn), push.supported()
 *   onStatus(fn)           fn(status, detail); status: connecting | connected | registered |
 *                          disconnected | error. Called at once with the current status.
 *                          A page the server closed for reading too slowly gets
 *                          ("disconnected", "too slow, resuming") and resumes by itself.
 *   register(code)         listen on another code (replaces the current one)
 *   code                   the code in use (null when the URL has none)
 *   status                 the current status
 *   socket                 the socket.io socket (same as the global `socket`)
 *   base                   the server's base URL (ends with /), e.g. https://host/notify/
 */
/*
 * The server's base URL, ending with "/": `server` if given, else the folder
 * above the one this script was loaded from (it is served at <base>/static/).
 * Shared by both parts of this file; the script's URL is only known while it
 * runs for the first time (document.currentScript).
 */
var notificationServiceBase = (function (script) {
  var here = script && script.src ? script.src : window.location.href;
  return function serverBase(server) {
    if (server) return new URL(String(server).replace(/\/?$/, "/"), window.location.href);
    return new URL("../", here);
  };
})(document.currentScript);

(function (global, serverBase) {
  "use strict";

  var params = new URLSearchParams(global.location.search);
  var options = global.NotificationServiceOptions || {};
  var base = serverBase(options.server);
  var statusListeners = [];
  var service = {
    code: params.get("code"),
    status: "connecting",
    socket: null,
    autoSeen: options.autoSeen !== false,
    base: base.href,
    lastReceivedId: null,  // sent when reconnecting: everything after it is missing
  };

  function storageKey(code) { return "notificationservice:lastEventId:" + code; }
  function seenStorage() { return options.storage || global.localStorage; }
  function loadSeen(code) {
    try { return seenStorage().getItem(storageKey(code)); } catch (err) { return null; }
  }
  function storeSeen(code, id) {
    try { seenStorage().setItem(storageKey(code), id); } catch (err) { /* private mode */ }
  }
  // After a reload, resume from the last event the page had shown.
  if (service.code) service.lastReceivedId = loadSeen(service.code);

  function setStatus(status, detail) {
    service.status = status;
    statusListeners.forEach(function (fn) {
      try { fn(status, detail); } catch (err) { console.error(err); }
    });
  }

  if (typeof global.io !== "function") {
    console.error("notificationservice.js: load ../static/socket.io.min.js first");
    return;
  }

  // auth is a function so every reconnection sends the code in use at that time:
  // the server registers the page as part of the connection, no race with events.
  var socket = global.io(base.origin, {
    path: base.pathname + "socket.io/",
    auth: function (send) {
      var auth = {};
      if (service.code) auth.code = service.code;
      if (service.code && service.lastReceivedId) auth.lastEventId = service.lastReceivedId;
      send(auth);
    },
    transports: ["websocket", "polling"],
    tryAllTransports: true,
  });
  service.socket = socket;
  global.socket = socket;

  socket.on("connect", function () {
    setStatus(service.code ? "registered" : "connected", service.code);
  });
  // A page that could not keep up (more than the server's --output-budget waiting) is
  // told so (ERROR 42904) just before the server closes it; it reconnects by itself and
  // resumes from the last id it got, so this is a status, not an error.
  var TOO_SLOW = 42904;
  var closedAsTooSlow = null;
  socket.on("disconnect", function (reason) {
    setStatus("disconnected", closedAsTooSlow || reason);
    closedAsTooSlow = null;
  });
  socket.on("connect_error", function (err) { setStatus("error", err && err.message); });
  socket.on("ERROR", function (body) {
    if (body && body.code === TOO_SLOW) {
      closedAsTooSlow = body.message;  // "too slow, resuming"
      console.warn("notificationservice.js: " + body.message);
      return;
    }
    setStatus("error", body && body.message);
  });
  // Registered before any page listener, so the id is kept before a handler runs.
  socket.onAny(function (event, data, meta) {
    if (!meta || !meta.id) return;
    if (meta.receipt) socket.emit("RECEIVED", { id: meta.id });  // a publisher waits for it
    if (meta.channel !== service.code) return;
    service.lastReceivedId = meta.id;
    if (service.autoSeen) service.seen(meta.id);
  });

  service.seen = function (id) {
    if (service.code && id) storeSeen(service.code, id);
  };
  service.lastSeen = function () { return service.code ? loadSeen(service.code) : null; };

  service.onGap = function (fn) {
    socket.on("RESUME_GAP", fn);
    return function () { socket.off("RESUME_GAP", fn); };
  };

  service.on = function (event, fn) {
    socket.on(event, fn);
    return function () { socket.off(event, fn); };
  };

  service.onAny = function (fn) {
    var listener = function (event, data, meta) { fn(event, data, meta); };
    socket.onAny(listener);
    return function () { socket.offAny(listener); };
  };

  service.onStatus = function (fn) {
    statusListeners.push(fn);
    fn(service.status, service.code);
    return function () {
      statusListeners = statusListeners.filter(function (other) { return other !== fn; });
    };
  };

  // -- channels by name: subscribe / unsubscribe -------------------------
  var ACK_TIMEOUT_MS = 10000;
  var wanted = new Map();  // channel -> {secret, lastId, waiters}
  var subscribeListeners = [];

  function askSubscribe(channel, entry) {
    var request = { channel: channel };
    if (entry.secret != null) request.secret = entry.secret;
    if (entry.lastId) request.lastEventId = entry.lastId;
    socket.timeout(ACK_TIMEOUT_MS).emit("subscribe", request, function (err, answer) {
      if (err) answer = { ok: false, channel: channel, error: "The server did not answer in time." };
      if (!answer.ok) {
        console.warn("notificationservice: subscribe " + channel + " refused: " + answer.error);
        if (wanted.get(channel) === entry) wanted.delete(channel);
      }
      subscribeListeners.forEach(function (fn) { fn(answer); });
      var waiters = entry.waiters;
      entry.waiters = [];
      waiters.forEach(function (resolve) { resolve(answer); });
    });
  }

  socket.on("connect", function () {
    wanted.forEach(function (entry, channel) { askSubscribe(channel, entry); });
  });
  socket.onAny(function (event, data, meta) {
    var entry = meta && meta.id && wanted.get(meta.channel);
    if (entry) entry.lastId = meta.id;
  });

  service.subscribe = function (channel, options) {
    var previous = wanted.get(channel);
    var entry = {
      secret: options && options.secret != null ? options.secret : null,
      lastId: previous ? previous.lastId : null,
      waiters: previous ? previous.waiters : [],
    };
    wanted.set(channel, entry);
    return new Promise(function (resolve) {
      entry.waiters.push(resolve);
      if (socket.connected) askSubscribe(channel, entry);  // otherwise "connect" asks
    });
  };

  service.unsubscribe = function (channel) {
    wanted.delete(channel);
    if (!socket.connected) return Promise.resolve({ ok: true, channel: channel });
    return new Promise(function (resolve) {
      socket.timeout(ACK_TIMEOUT_MS).emit("unsubscribe", channel, function (err, answer) {
        resolve(err ? { ok: false, channel: channel, error: "The server did not answer in time." }
                    : answer);
      });
    });
  };

  service.channels = function () { return Array.from(wanted.keys()); };

  // fn(answer) for every subscribe answer, the re-subscriptions after a reconnect included.
  service.onSubscribe = function (fn) {
    subscribeListeners.push(fn);
    return function () {
      subscribeListeners = subscribeListeners.filter(function (other) { return other !== fn; });
    };
  };

  service.register = function (code) {
    service.code = code;
    service.lastReceivedId = loadSeen(code);
    var request = { code: code };
    if (service.lastReceivedId) request.lastEventId = service.lastReceivedId;
    return new Promise(function (resolve) {
      socket.emit("REGISTER", request, function (answer) {
        if (answer && answer.ok) setStatus("registered", code);
        resolve(answer);
      });
    });
  };

  global.NotificationService = service;
})(window, notificationServiceBase);

/*
 * notificationservice-push.js: Web Push for pages of the Browser Notification
 * Service. Registers static/push-sw.js, subscribes with the server's VAPID key
 * and POSTs the subscription with an optional id, group and channels, so the
 * server can push to this browser even when the page is closed.
 *
 * Every URL is relative to the server's base (see serverBase above), so it
 * works under a reverse proxy's sub-path; the worker's scope is <base>/static/.
 *
 *   await NotificationServicePush.subscribe({ channels: ['1234'] });
 *   await NotificationServicePush.subscribe({ id: 'alice', group: 'staff' });
 *   await NotificationServicePush.unsubscribe();
 *
 * Works without a socket.io connection; also reachable as NotificationService.push.
 */
(function (global, serverBase) {
  'use strict';

  const WORKER = 'static/push-sw.js';

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

  async function api(base, path, options) {
    const response = await fetch(new URL(path, base), options);
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status} from ${path}`);
    return answer;
  }

  // The worker's scope is <base>/static/, so pages elsewhere are not controlled by
  // it and navigator.serviceWorker.ready would never resolve: wait for this
  // registration's worker to activate instead (push needs no control of pages).
  async function registration(base) {
    const reg = await navigator.serviceWorker.register(new URL(WORKER, base));
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
   * options: {id, group, channels: [...], secret,
   *           server: 'https://host/notify/' (default: where this script came from)}
   * Resolves to {subscription, answer} where answer is the server's JSON.
   */
  async function subscribe(options = {}) {
    if (!supported()) throw new Error('This browser cannot receive Web Push notifications.');
    const base = serverBase(options.server);
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') throw new Error(`Notifications are not allowed (${permission}).`);
    const { publicKey } = await api(base, 'webpush/public-key');
    const reg = await registration(base);
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
    const answer = await api(base, 'webpush/subscriptions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { subscription, answer };
  }

  /** Forget this browser's subscription on the server and in the browser. */
  async function unsubscribe(options = {}) {
    if (!supported()) return false;
    const base = serverBase(options.server);
    const reg = await navigator.serviceWorker.getRegistration(new URL(WORKER, base));
    const subscription = reg && await reg.pushManager.getSubscription();
    if (!subscription) return false;
    await fetch(new URL('webpush/subscriptions', base), {
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
    subscribe, unsubscribe, onPush, supported, urlBase64ToUint8Array,
    registration: (server) => registration(serverBase(server)),
  };
})(window, notificationServiceBase);

if (window.NotificationService) window.NotificationService.push = window.NotificationServicePush;
