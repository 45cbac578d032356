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
 * API (window.NotificationService):
 *   on(event, fn)          fn(data) for one event name; returns an unsubscribe function
 *   onAny(fn)              fn(eventName, data) for every event
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
  var statusListeners = [];
  var service = {
    code: params.get("code"),
    status: "connecting",
    socket: null,
  };

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
    auth: function (send) { send(service.code ? { code: service.code } : {}); },
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

  service.on = function (event, fn) {
    socket.on(event, fn);
    return function () { socket.off(event, fn); };
  };

  service.onAny = function (fn) {
    var listener = function (event) {
      fn(event, Array.prototype.slice.call(arguments, 1)[0]);
    };
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

  service.register = function (code) {
    service.code = code;
    return new Promise(function (resolve) {
      socket.emit("REGISTER", { code: code }, function (answer) {
        if (answer && answer.ok) setStatus("registered", code);
        resolve(answer);
      });
    });
  };

  global.NotificationService = service;
})(window);
