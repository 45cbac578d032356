/*
 * notificationservice-channels.js: listen on channels by name from a page.
 *
 *   subscribe("news")                          -> Promise of {ok: true, channel: "news"}
 *   subscribe("dir::files", {secret: "..."})   private channel (space::name) with its secret
 *   unsubscribe("news")
 *
 * The channels asked for are remembered and asked for again after every
 * reconnect (socket.io rooms do not survive a lost connection). A refusal
 * (wrong secret, bad name, too many channels) resolves the promise with
 * {ok: false, error: "..."}, is logged to the console, and is not retried.
 * Uses the page's global `socket` (the one notificationservice.js keeps) or
 * creates it with io(); needs /static/socket.io.min.js loaded first.
 * NotificationChannels.onanswer = function (answer) {...} sees every answer,
 * the re-subscriptions after a reconnect included.
 * Self-contained: it never touches the DOM and never evaluates event data.
 */
(function (global) {
  "use strict";

  var ACK_TIMEOUT_MS = 10000;
  var state = null;  // {socket, wanted: Map(channel -> {secret, waiters: []})}

  function setup(socket) {
    if (state && state.socket === socket) return state;
    state = {socket: socket, wanted: new Map()};
    socket.on("connect", function () {
      state.wanted.forEach(function (entry, channel) { ask(channel, entry); });
    });
    return state;
  }

  function current() {
    if (state) return state;
    if (!global.socket) {
      if (typeof global.io !== "function") {
        throw new Error("Load /static/socket.io.min.js before notificationservice-channels.js");
      }
      global.socket = global.io();
    }
    return setup(global.socket);
  }

  function ask(channel, entry) {
    var payload = entry.secret == null ? channel : {channel: channel, secret: entry.secret};
    state.socket.timeout(ACK_TIMEOUT_MS).emit("subscribe", payload, function (err, answer) {
      if (err) answer = {ok: false, channel: channel, error: "The server did not answer in time."};
      if (!answer.ok) {
        console.warn("notificationservice: subscribe " + channel + " refused: " + answer.error);
        if (state.wanted.get(channel) === entry) state.wanted.delete(channel);
      }
      if (typeof global.NotificationChannels.onanswer === "function") {
        global.NotificationChannels.onanswer(answer);
      }
      var waiters = entry.waiters;
      entry.waiters = [];
      waiters.forEach(function (resolve) { resolve(answer); });
    });
  }

  /** Listen on `channel` now and after every reconnect; resolves with the server's answer. */
  function subscribe(channel, options) {
    var s = current();
    var previous = s.wanted.get(channel);
    var entry = {secret: options && options.secret != null ? options.secret : null,
                 waiters: previous ? previous.waiters : []};
    s.wanted.set(channel, entry);
    return new Promise(function (resolve) {
      entry.waiters.push(resolve);
      if (s.socket.connected) ask(channel, entry);  // otherwise the connect handler asks
    });
  }

  /** Stop listening on `channel` (also after reconnects). */
  function unsubscribe(channel) {
    var s = current();
    s.wanted.delete(channel);
    if (!s.socket.connected) return Promise.resolve({ok: true, channel: channel});
    return new Promise(function (resolve) {
      s.socket.timeout(ACK_TIMEOUT_MS).emit("unsubscribe", channel, function (err, answer) {
        resolve(err ? {ok: false, channel: channel, error: "The server did not answer in time."}
                    : answer);
      });
    });
  }

  global.NotificationChannels = {
    subscribe: subscribe,
    unsubscribe: unsubscribe,
    /** Use this socket instead of the global one (call before subscribing). */
    use: function (socket) { return setup(socket) && undefined; },
    /** Called with every subscribe answer, re-subscriptions after a reconnect included. */
    onanswer: null,
    /** The channels this page asked for and was not refused. */
    channels: function () { return state ? Array.from(state.wanted.keys()) : []; }
  };
  if (global.subscribe === undefined) global.subscribe = subscribe;
  if (global.unsubscribe === undefined) global.unsubscribe = unsubscribe;
})(window);
