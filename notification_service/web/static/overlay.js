/*!
 * overlay.js: the alert overlay (sources/alert.html) and its server-side queue.
 *
 * Events arrive through notificationservice.js (the socket.io transport). This
 * script keeps the ones meant for this overlay and plays them when its queue on
 * the server says so: it connects to the /alerts namespace on the same
 * connection with its identity, and reports each alert's "started" and
 * "finished"; the answer names the next one. So two browser sources on one code
 * never mix up what each has shown, and a reload neither repeats nor skips one.
 *
 * Identity: ?overlay=NAME, else an id kept in sessionStorage (one per browser
 * source in OBS, kept across reloads of that source; localStorage would be
 * shared by every source). OBS: obsSourceVisibleChanged / obsSourceActiveChanged
 * and obsstudio.getStatus; outside OBS the page's own visibility.
 * ?hidden=hold (default: keep alerts until the source is visible again), play, drop.
 */
(function (global) {
  "use strict";

  var VERSION = "overlay/1.0";
  var ASK_TIMEOUT_MS = 5000;
  var SAFETY_PUMP_MS = 5000;
  var MAX_BUFFER = 200;
  var INTERNAL = ["WELCOME", "ERROR", "RESUME_GAP", "ALERT_QUEUE", "ALERT_DESIGNS"];

  var params = new URLSearchParams(global.location.search);
  var service = global.NotificationService;
  var code = params.get("code");
  var root = document.documentElement;
  var stage = document.getElementById("stage");
  var statusBox = document.getElementById("status");
  var only = (params.get("events") || "").split(",").map(function (s) {
    return s.trim().toUpperCase();
  }).filter(Boolean);
  var hiddenPolicy = ["hold", "play", "drop"].indexOf(params.get("hidden")) !== -1 ? params.get("hidden") : "hold";
  var durationParam = parseFloat(params.get("duration"));
  var gapMs = Math.max(0, parseFloat(params.get("gap") || "0.5")) * 1000;
  var position = params.get("position") || "center";
  if (position === "top" || position === "bottom") stage.classList.add(position);
  if (!code) {  // opened without a code: say how to use it instead of joining nothing
    statusBox.style.display = "block";
    statusBox.textContent = "Add ?code=YOUR_CODE to this URL (the console gives you the whole URL).";
    return;
  }

  var designs = null;
  var buffer = new Map();    // id -> {id, name, data, time}: delivered, not played yet
  var current = null;        // the alert on screen
  var asking = false;
  var ready = false;         // the queue took our connection
  var paused = false;
  var failures = 0;
  var resting = false;       // the gap between two alerts
  var connection = "connecting";

  function setState(name, value) { root.setAttribute("data-" + name, String(value)); showStatus(); }

  // -- identity: one per browser source ------------------------------------
  var IDENTITY_KEY = "notificationservice:overlay:" + code;
  function newIdentity() {
    var bytes = new Uint8Array(8);
    global.crypto.getRandomValues(bytes);
    return "ov-" + Array.from(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function identity(renew) {
    if (params.get("overlay")) return params.get("overlay");
    var id = null;
    try { id = renew ? null : global.sessionStorage.getItem(IDENTITY_KEY); } catch (err) { /* none */ }
    if (!id) {
      id = newIdentity();
      try { global.sessionStorage.setItem(IDENTITY_KEY, id); } catch (err) { /* private mode */ }
    }
    return id;
  }
  var overlayId = identity(false);

  // -- where the source is: OBS, or the page's own visibility ----------------
  var obs = global.obsstudio || null;
  var place = { visible: obs ? true : document.visibilityState !== "hidden", active: true, streaming: null };
  function presence() {
    var report = { visible: place.visible, active: place.active, client: VERSION, obs_page: !!obs };
    if (place.streaming !== null) report.streaming = place.streaming;
    if (obs && obs.pluginVersion) report.obs = String(obs.pluginVersion);
    return report;
  }
  function placeChanged() {
    setState("visible", place.visible);
    if (ready) report("presence", {}, function () { pump(); });
  }
  if (obs) {
    global.addEventListener("obsSourceVisibleChanged", function (event) {
      place.visible = !!(event.detail && event.detail.visible); placeChanged();
    });
    global.addEventListener("obsSourceActiveChanged", function (event) {
      place.active = !!(event.detail && event.detail.active); placeChanged();
    });
    global.addEventListener("obsStreamingStarted", function () { place.streaming = true; placeChanged(); });
    global.addEventListener("obsStreamingStopped", function () { place.streaming = false; placeChanged(); });
    if (typeof obs.getStatus === "function") {
      try {
        obs.getStatus(function (status) {
          if (status && typeof status.streaming === "boolean") { place.streaming = status.streaming; placeChanged(); }
        });
      } catch (err) { /* an older obs-browser without permission: presence stays unknown */ }
    }
  } else {
    document.addEventListener("visibilitychange", function () {
      place.visible = document.visibilityState !== "hidden"; placeChanged();
    });
  }

  // -- status corner (status=1): never shows the code --------------------------
  function showStatus() {
    if (!statusBox || params.get("status") !== "1") return;
    statusBox.style.display = "block";
    var parts = [connection, ready ? (paused ? "paused" : "queue ready") : "queue connecting"];
    if (!place.visible) parts.push("hidden (" + hiddenPolicy + ")");
    if (buffer.size) parts.push(buffer.size + " waiting");
    statusBox.textContent = parts.join(" · ");
  }
  service.onStatus(function (status) { connection = status; showStatus(); });

  // -- designs -----------------------------------------------------------------
  function loadDesigns() {
    return fetch("../codes/" + encodeURIComponent(code) + "/alerts", { cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .catch(function () { return null; })
      .then(function (config) {
        designs = config || { base: global.AlertDesigns.FALLBACK_BASE, default: {}, events: {} };
        setState("designs", designs.revision === undefined ? "fallback" : designs.revision);
        pump();
      });
  }

  // -- the queue on the server -----------------------------------------------------
  var alerts = service.socket.io.socket("/alerts", {
    auth: function (send) {
      send({ code: code, overlay: overlayId, named: !!params.get("overlay"),
             events: only.length ? only : null, hidden: hiddenPolicy, presence: presence() });
    },
  });
  alerts.on("ALERT_READY", function () { ready = true; failures = 0; setState("queue", "ready"); pump(); });
  alerts.on("disconnect", function (reason) {
    ready = false; asking = false; setState("queue", "disconnected");
    // The server turned us away (no room, a store down): socket.io never retries that itself.
    if (reason === "io server disconnect") setTimeout(function () { alerts.connect(); }, 5000);
  });
  alerts.on("ERROR", function (body) { console.warn("alert queue: " + (body && body.message)); });

  function haveList() {
    return Array.from(buffer.values()).slice(0, 100).map(function (item) {
      return { id: item.id, name: item.name, time: item.time };
    });
  }

  function report(op, extra, onAnswer) {
    if (!ready) { if (onAnswer) setTimeout(function () { onAnswer(null); }, 0); return; }
    var request = Object.assign({ op: op, presence: presence(), have: haveList() }, extra);
    alerts.timeout(ASK_TIMEOUT_MS).emit("ALERT", request, function (err, answer) {
      if (err || !answer) { if (onAnswer) onAnswer(null); return; }
      if (answer.replaced) {  // a copy of this page (a duplicated tab) took our identity
        overlayId = identity(true); alerts.disconnect().connect();
        if (onAnswer) onAnswer(null);
        return;
      }
      if (onAnswer) onAnswer(answer);
    });
  }

  function ask(op, extra) {
    asking = true;
    report(op, extra, function (answer) {
      asking = false;
      if (!answer || answer.ok === false) {
        failures += 1;
        if (failures >= 2 && buffer.size) return playLocally();  // the queue is down: never stall
        setTimeout(pump, 1000);
        return;
      }
      failures = 0;
      paused = !!answer.paused;
      setState("paused", paused);
      (answer.done || []).forEach(function (id) { buffer.delete(id); });
      if (answer.play) play(answer.play);
      else if (answer.retry) setTimeout(pump, answer.retry * 1000);  // an alert still on its way
      showStatus();
    });
  }

  function canPlay() {
    return hiddenPolicy === "play" || place.visible;
  }

  function pump(force) {
    if (!ready || asking || current || resting || designs === null) return;
    if (!canPlay() || (paused && !force)) return;
    ask("next", {});
  }
  setInterval(function () { pump(true); }, SAFETY_PUMP_MS);  // a notice missed is never a stall

  function playLocally() {
    var oldest = buffer.values().next().value;
    if (oldest) play({ id: oldest.id, event: oldest.name, data: oldest.data, time: oldest.time });
  }

  // -- playing one alert ---------------------------------------------------------------
  function lastSequence(id) {
    var match = /^(.*)-(\d+)$/.exec(id || "");
    return match ? { epoch: match[1], sequence: parseInt(match[2], 10) } : null;
  }
  function markSeen(id) {
    // The transport resumes this source after the last alert it started (sessionStorage).
    var now = lastSequence(id), before = lastSequence(service.lastSeen && service.lastSeen());
    if (!now || (before && before.epoch === now.epoch && before.sequence >= now.sequence)) return;
    service.seen(id);
  }

  function play(item) {
    var held = buffer.get(item.id);
    var entry = held || { id: item.id, name: item.event, data: item.data, time: item.time };
    buffer.delete(item.id);
    var design = global.AlertDesigns.designFor(designs, entry.name, entry.data);
    var durationMs = (isFinite(durationParam) && durationParam > 0 ? durationParam : design.duration) * 1000;
    var shown = global.AlertDesigns.render(design, entry.name, entry.data, { id: entry.id },
                                           { durationMs: Math.max(100, durationMs) });
    current = { id: entry.id, shown: shown, timer: null };
    // No acknowledgement asked: nothing waits for it, and it saves a packet per alert.
    if (ready) alerts.emit("ALERT", { op: "started", id: entry.id, presence: presence(),
                                      duration: (shown.durationMs + 2 * shown.animationMs) / 1000 });
    markSeen(entry.id);
    stage.appendChild(shown.element);
    shown.enter();
    current.timer = setTimeout(function () { end("played"); }, shown.durationMs);
    showStatus();
  }

  function end(reason) {
    if (!current) return;
    var ending = current;
    clearTimeout(ending.timer);
    ending.ending = true;
    ending.shown.leave(function () {
      if (current === ending) current = null;
      resting = true;
      setTimeout(function () { resting = false; finished(ending.id, reason); }, reason === "interrupted" ? 0 : gapMs);
    });
  }

  function finished(id, reason) {
    if (!ready) { pump(); return; }
    ask("finished", { id: id, reason: reason });
  }

  // -- what the transport delivers -----------------------------------------------------
  function wanted(name) { return only.length === 0 || only.indexOf(name.toUpperCase()) !== -1; }

  function notice(name, data, meta) {
    if (meta && meta.replayed) return;  // old notices from history: already acted on
    if (name === "ALERT_DESIGNS") { loadDesigns(); return; }
    if (name !== "ALERT_QUEUE" || !data) return;
    paused = !!data.paused;
    setState("paused", paused);
    var ids = data.ids || [];
    if (data.action === "skip") {
      ids.forEach(function (id) { buffer.delete(id); });
      if (current && !current.ending && (ids.length === 0 || ids.indexOf(current.id) !== -1)) end("skipped");
    } else if (data.action === "clear") {
      buffer.clear();
    }
    pump();
  }

  service.onAny(function (name, data, meta) {
    if (INTERNAL.indexOf(name) !== -1) return notice(name, data, meta);
    if (!meta || !meta.id || meta.channel !== code || !wanted(name)) return;
    if (buffer.has(meta.id) || (current && current.id === meta.id)) return;
    buffer.set(meta.id, { id: meta.id, name: name, data: data, time: meta.time });
    if (buffer.size > MAX_BUFFER) buffer.delete(buffer.keys().next().value);
    if (current && !current.ending && designs && global.AlertDesigns.modeFor(designs, name) === "interrupt") {
      end("interrupted");
      return;
    }
    pump();
  });

  setState("visible", place.visible);
  setState("overlay", overlayId);
  loadDesigns();
})(window);
