/*!
 * notificationservice.js: connect a page to Browser Notification Service.
 *
 * Include after the socket.io client (served locally, no internet needed):
 *   <script src="/static/socket.io.min.js"></script>
 *   <script src="/static/notificationservice.js"></script>
 *
 * It reads `code` from the page URL (?code=1234), connects to the page's own
 * origin, registers the code, and reconnects and re-registers by itself.
 * The global `socket` is kept so existing pages' socket.on('EVENT', fn) work.
 *
 * It remembers the id of the last event per code (localStorage, which survives
 * an OBS source refresh) and sends it on every connect, so the server replays
 * exactly what the page missed. Events carry metadata as a second argument:
 * socket.on('FOLLOW', (data, meta) => ...) with meta = {id, channel, time, replayed}.
 *
 * Options, set before this script loads:
 *   window.NotificationServiceOptions = { autoSeen: false }
 *     the page calls NotificationService.seen(meta.id) itself once an event has
 *     really been shown (an overlay that queues alerts), so a reload replays the
 *     alerts that were queued but not shown yet.
 *
 * API (window.NotificationService):
 *   on(event, fn)          fn(data, meta) for one event name; returns an unsubscribe function
 *   onAny(fn)              fn(eventName, data, meta) for every event
 *   onGap(fn)              fn(notice) when the server could not replay everything missed
 *   seen(id)               remember id as the last event shown (see autoSeen)
 *   subscribe(channel, {secret})  listen on a channel too (space::name needs its secret);
 *                          resolves with {ok, channel} or {ok: false, error}; asked again,
 *                          with the last event id seen, after every reconnect
 *   unsubscribe(channel)   stop listening on it
 *   channels()             the channels asked for and not refused
 *   onSubscribe(fn)        fn(answer) for every subscribe answer, re-subscriptions included
 *   onStatus(fn)           fn(status, detail); status: connecting | connected | registered |
 *                          disconnected | error. Called at once with the current status.
 *   register(code)         listen on another code (replaces the current one)
 *   code                   the code in use (null when the URL has none)
 *   status                 the current status
 *   socket                 the socket.io socket (same as the global `socket`)
 */
(function (global) {
  "use strict";

  var params = new URLSearchParams(global.location.search);
  var options = global.NotificationServiceOptions || {};
  var statusListeners = [];
  var service = {
    code: params.get("code"),
    status: "connecting",
    socket: null,
    autoSeen: options.autoSeen !== false,
    lastReceivedId: null,  // sent when reconnecting: everything after it is missing
  };

  function storageKey(code) { return "notificationservice:lastEventId:" + code; }
  function loadSeen(code) {
    try { return global.localStorage.getItem(storageKey(code)); } catch (err) { return null; }
  }
  function storeSeen(code, id) {
    try { global.localStorage.setItem(storageKey(code), id); } catch (err) { /* private mode */ }
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
    console.error("notificationservice.js: load /static/socket.io.min.js first");
    return;
  }

  // auth is a function so every reconnection sends the code in use at that time:
  // the server registers the page as part of the connection, no race with events.
  var socket = global.io({
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
  socket.on("disconnect", function (reason) { setStatus("disconnected", reason); });
  socket.on("connect_error", function (err) { setStatus("error", err && err.message); });
  socket.on("ERROR", function (body) { setStatus("error", body && body.message); });
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
})(window);
