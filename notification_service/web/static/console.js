/*!
 * console.js: the operator console (sources/console.html, served at /console/).
 *
 * Per code: the overlays and whether they are on air, the queue with its
 * controls, a live tail of what happened to each alert, test buttons, the
 * designer with a live preview and uploads, and trigger snippets for bots.
 * Codes, overlay URLs and snippets stay hidden until clicked (the console is
 * often on a screen that is being streamed). The admin token comes from the
 * link the server printed (#token=...), is kept in this browser's localStorage,
 * and travels only as an Authorization header. Every URL is relative to this
 * page (../codes/...), so the console works under a base path; nothing is
 * loaded from the internet. Everything from events is shown as text.
 */
(function (global) {
  "use strict";

  var TOKEN_KEY = "notificationservice:console:token";
  var CODES_KEY = "notificationservice:console:codes";
  var SELECTED_KEY = "notificationservice:console:selected";
  var STARTER_EVENTS = ["FOLLOW", "SUB", "RAID", "CHEER", "DONATION"];
  var REFRESH_MS = 1000;
  var OUTCOMES = { played: "played", interrupted: "interrupted", skipped: "skipped",
    busy: "dropped: another was playing", replaced: "replaced by a newer one",
    hidden: "dropped: source hidden", cleared: "cleared", full: "dropped: queue full",
    expired: "expired: waited too long" };

  var $ = function (id) { return document.getElementById(id); };
  var state = {
    token: null, codes: [], code: null, designs: null, draft: null, eventName: "default",
    publishToken: false, queue: null, status: null, timer: null, saving: false,
  };
  var base = new URL("../", global.location.href).href;  // the server, under any base path

  // -- small helpers ---------------------------------------------------------
  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) {
      if (key === "text") node.textContent = attributes[key];
      else if (key === "className") node.className = attributes[key];
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), attributes[key]);
      else node.setAttribute(key, attributes[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function masked(code) { return code.slice(0, 2) + "••••"; }
  function ago(seconds) {
    if (!seconds) return "";
    var delta = Math.max(0, Date.now() / 1000 - seconds);
    if (delta < 60) return Math.round(delta) + " s ago";
    if (delta < 3600) return Math.round(delta / 60) + " min ago";
    return Math.round(delta / 3600) + " h ago";
  }
  function summary(data) {
    if (data === null || typeof data !== "object") return String(data);
    return Object.keys(data).filter(function (key) { return key !== "code" && key !== "event"; })
      .map(function (key) { return key + "=" + (typeof data[key] === "object" ? JSON.stringify(data[key]) : data[key]); })
      .join(" ");
  }
  function copy(text) {
    if (navigator.clipboard && global.isSecureContext) return navigator.clipboard.writeText(text);
    var area = el("textarea", {}); area.value = text; document.body.appendChild(area);
    area.select(); document.execCommand("copy"); area.remove();
    return Promise.resolve();
  }

  /** A text that stays hidden until clicked (codes, overlay URLs, snippets). */
  function secret(node, text, revealed) {
    clear(node);
    node.setAttribute("data-secret", text);
    var shown = el("span", { className: revealed ? "shown-text" : "hidden-text",
                             text: revealed ? text : "•••••••••••• click to show" });
    var toggle = el("button", { className: "small", text: revealed ? "Hide" : "Show",
                                onclick: function () { secret(node, text, !revealed); } });
    shown.addEventListener("click", function () { if (!revealed) secret(node, text, true); });
    var copier = el("button", { className: "small", text: "Copy", onclick: function () {
      copy(text).then(function () { copier.textContent = "Copied"; setTimeout(function () { copier.textContent = "Copy"; }, 1200); });
    } });
    node.appendChild(shown); node.appendChild(document.createTextNode(" "));
    node.appendChild(toggle); node.appendChild(copier);
  }

  function api(path, options) {
    options = options || {};
    var headers = Object.assign({ Authorization: "Bearer " + state.token }, options.headers || {});
    return fetch(base + path, Object.assign({}, options, { headers: headers, cache: "no-store" }))
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (response.status === 401 || response.status === 403) signOut(body.error);
          if (!response.ok) { var error = new Error(body.error || ("HTTP " + response.status)); error.body = body; throw error; }
          $("server-state").textContent = "connected"; $("server-state").className = "badge ok";
          return body;
        });
      }, function (error) {
        $("server-state").textContent = "server unreachable"; $("server-state").className = "badge bad";
        throw error;
      });
  }
  function post(path, body) {
    return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  // -- signing in --------------------------------------------------------------
  function signIn(token) {
    state.token = token;
    try { global.localStorage.setItem(TOKEN_KEY, token); } catch (err) { /* private mode */ }
    return api("alerts/codes").then(function (answer) {
      $("sign-in").hidden = true; $("app").hidden = false; $("sign-out").hidden = false;
      showCodes(answer);
      var remembered = null;
      try { remembered = global.localStorage.getItem(SELECTED_KEY); } catch (err) { /* none */ }
      if (remembered && state.codes.indexOf(remembered) !== -1) select(remembered);
      else if (state.codes.length) select(state.codes[0]);
      setInterval(refreshCodes, 5000);
    }, function (error) {
      $("sign-in-error").textContent = error.message;
    });
  }
  function signOut(reason) {
    try { global.localStorage.removeItem(TOKEN_KEY); } catch (err) { /* none */ }
    state.token = null;
    $("app").hidden = true; $("sign-out").hidden = true; $("sign-in").hidden = false;
    if (reason) $("sign-in-error").textContent = reason;
  }
  $("sign-in-form").addEventListener("submit", function (event) {
    event.preventDefault(); signIn($("token-input").value.trim());
  });
  $("sign-out").addEventListener("click", function () { signOut(); });

  // -- codes -----------------------------------------------------------------------
  function localCodes() {
    try { return JSON.parse(global.localStorage.getItem(CODES_KEY) || "[]"); } catch (err) { return []; }
  }
  function rememberCode(code) {
    var codes = localCodes();
    if (codes.indexOf(code) === -1) codes.push(code);
    try { global.localStorage.setItem(CODES_KEY, JSON.stringify(codes)); } catch (err) { /* none */ }
  }
  function showCodes(answer) {
    state.publishToken = !!answer.publish_token;
    var known = {};
    (answer.codes || []).forEach(function (item) { known[item.code] = item; });
    localCodes().forEach(function (code) { if (!known[code]) known[code] = { code: code, overlays: 0, connected: 0 }; });
    state.codes = Object.keys(known).sort();
    var list = clear($("code-list"));
    state.codes.forEach(function (code) {
      var item = known[code];
      var label = el("span", { className: "secret-code", text: masked(code), title: "click to show" });
      var live = el("span", { className: "badge " + (item.connected ? "ok" : ""),
                              text: item.connected + "/" + item.overlays });
      var row = el("li", { "data-code": code, className: code === state.code ? "selected" : "" }, [label, live]);
      row.addEventListener("click", function () {
        if (state.code === code) label.textContent = label.textContent === code ? masked(code) : code;
        else select(code);
      });
      list.appendChild(row);
    });
  }
  function refreshCodes() { api("alerts/codes").then(showCodes, function () {}); }
  function randomCode() {
    var letters = "abcdefghijkmnpqrstuvwxyz23456789", bytes = new Uint8Array(14), code = "";
    global.crypto.getRandomValues(bytes);
    bytes.forEach(function (b) { code += letters[b % letters.length]; });
    return code;
  }
  $("new-code").addEventListener("click", function () { var code = randomCode(); rememberCode(code); refreshCodes(); select(code); });
  $("add-code-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var code = $("add-code-input").value.trim();
    if (!/^[A-Za-z0-9_.~-]{1,128}$/.test(code)) return;
    $("add-code-input").value = ""; rememberCode(code); refreshCodes(); select(code);
  });

  function select(code) {
    state.code = code;
    try { global.localStorage.setItem(SELECTED_KEY, code); } catch (err) { /* none */ }
    Array.prototype.forEach.call($("code-list").children, function (row) {
      row.className = row.getAttribute("data-code") === code ? "selected" : "";
    });
    $("code-view").hidden = false;
    state.eventName = "default";
    showOverlayUrl(false);
    loadDesigns();
    refresh();
    if (state.timer) clearInterval(state.timer);
    state.timer = setInterval(refresh, REFRESH_MS);
  }
  function path(suffix) { return "codes/" + encodeURIComponent(state.code) + "/" + suffix; }

  // -- overlays, queue, tail -------------------------------------------------------------
  function refresh() {
    if (!state.code) return;
    var code = state.code;
    Promise.all([api(path("status")), api(path("queue"))]).then(function (answers) {
      if (code !== state.code) return;
      state.status = answers[0]; state.queue = answers[1];
      showOverlays(); showQueue(); showTail();
    }, function () {});
  }

  function onAir(overlay) {
    if (!overlay.connected) return el("span", { className: "badge bad", text: "offline" });
    var badges = el("span", {});
    badges.appendChild(el("span", { className: "badge " + (overlay.visible ? "ok" : "warn"),
                                    text: overlay.visible ? "visible" : "hidden" }));
    if (overlay.active === false) badges.appendChild(el("span", { className: "badge warn", text: "not on program" }));
    if (overlay.streaming === true) badges.appendChild(el("span", { className: "badge ok", text: "streaming" }));
    if (overlay.streaming === false) badges.appendChild(el("span", { className: "badge", text: "not streaming" }));
    return badges;
  }
  function showOverlays() {
    var rows = clear($("overlay-rows"));
    var overlays = state.status.overlays || [];
    $("no-overlays").hidden = overlays.length > 0;
    var badge = document.querySelector('#code-list li.selected .badge');
    if (badge) {
      var live = overlays.filter(function (overlay) { return overlay.connected; }).length;
      badge.textContent = live + "/" + overlays.length;
      badge.className = "badge " + (live ? "ok" : "");
    }
    overlays.forEach(function (overlay) {
      var who = el("td", {}, [el("div", { text: overlay.overlay }),
        el("div", { className: "hint", text: (overlay.obs ? "OBS " + overlay.obs : "browser") + " · " + (overlay.client || "?") })]);
      var takes = el("td", { text: (overlay.events ? overlay.events.join(", ") : "all events") + " · hidden: " + overlay.hidden });
      var now = el("td", { text: overlay.playing ? "playing, " + overlay.waiting + " waiting" :
                                  overlay.waiting + " waiting" + (overlay.connected ? "" : " · seen " + ago(overlay.seen)) });
      rows.appendChild(el("tr", { "data-overlay": overlay.overlay }, [who, el("td", {}, [onAir(overlay)]), takes, now]));
    });
  }

  function overlayUrl() {
    var url = base + "sources/alert.html?code=" + encodeURIComponent(state.code);
    var events = $("url-events").value.split(",").map(function (s) { return s.trim().toUpperCase(); }).filter(Boolean);
    if (events.length) url += "&events=" + events.join(",");
    if ($("url-hidden").value !== "hold") url += "&hidden=" + $("url-hidden").value;
    return url;
  }
  function showOverlayUrl(revealed) { secret($("overlay-url"), overlayUrl(), revealed); }
  $("url-events").addEventListener("input", function () { showOverlayUrl(false); });
  $("url-hidden").addEventListener("change", function () { showOverlayUrl(false); });

  function alertLine(item, extra) {
    var line = el("li", { "data-event-id": item.id }, [
      el("span", { className: "what", text: item.event }),
      el("span", { text: summary(item.data) })]);
    (extra || []).forEach(function (node) { line.appendChild(node); });
    return line;
  }
  function showQueue() {
    var queue = state.queue;
    $("paused-badge").hidden = !queue.paused;
    $("pause").hidden = queue.paused; $("resume").hidden = !queue.paused;
    var playing = clear($("playing"));
    if (!queue.playing.length) playing.appendChild(el("li", { className: "empty", text: "nothing" }));
    queue.playing.forEach(function (item) {
      playing.appendChild(alertLine(item, [el("span", { className: "hint", text: "on " + item.overlay }),
        el("button", { className: "small", text: "Skip", onclick: function () { control("skip", item.id); } })]));
    });
    var waiting = clear($("waiting"));
    if (!queue.waiting.length) waiting.appendChild(el("li", { className: "empty", text: "nothing" }));
    queue.waiting.forEach(function (item) {
      waiting.appendChild(alertLine(item, [el("span", { className: "hint", text: "for " + item.overlays.join(", ") }),
        el("button", { className: "small", text: "Remove", onclick: function () { control("skip", item.id); } })]));
    });
  }
  function outcomeText(item) {
    var names = Object.keys(item.outcomes || {});
    if (!names.length) return "no overlay took it";
    return names.map(function (name) { return (OUTCOMES[item.outcomes[name]] || item.outcomes[name]) + " on " + name; }).join(", ");
  }
  function showTail() {
    var queue = state.queue, tail = clear($("tail"));
    var items = [];
    queue.playing.forEach(function (item) { items.push([item, "playing on " + item.overlay]); });
    queue.waiting.forEach(function (item) { items.push([item, "waiting for " + item.overlays.join(", ")]); });
    queue.recent.forEach(function (item) { items.push([item, outcomeText(item)]); });
    items.sort(function (a, b) { return b[0].time - a[0].time; });
    if (!items.length) tail.appendChild(el("li", { className: "empty", text: "no alert yet: fire a test alert" }));
    items.slice(0, 30).forEach(function (pair) {
      var item = pair[0];
      tail.appendChild(alertLine(item, [el("span", { className: "hint", text: pair[1] }),
        el("span", { className: "when", text: ago(item.time) }),
        el("button", { className: "small", text: "Replay", onclick: function () { control("replay", item.id); } })]));
    });
  }
  function control(action, id) {
    var body = { action: action };
    if (id) body.id = id;
    return post(path("queue"), body).then(refresh, function (error) { $("test-answer").textContent = error.message; });
  }
  $("pause").addEventListener("click", function () { control("pause"); });
  $("resume").addEventListener("click", function () { control("resume"); });
  $("skip").addEventListener("click", function () { control("skip"); });
  $("clear").addEventListener("click", function () { control("clear"); });

  // -- test alerts -------------------------------------------------------------------------
  function eventNames() {
    var names = STARTER_EVENTS.slice();
    Object.keys((state.draft && state.draft.events) || {}).forEach(function (name) {
      if (names.indexOf(name) === -1) names.push(name);
    });
    return names;
  }
  function showTestButtons() {
    var buttons = clear($("test-buttons"));
    eventNames().forEach(function (name) {
      buttons.appendChild(el("button", { "data-event": name, text: name, onclick: function () {
        var data = (state.designs.samples || {})[name] || { user: "TestUser" };
        post(path("test"), { event: name, data: data }).then(function (answer) {
          var where = answer.queued_position === undefined || answer.queued_position === null
            ? "no overlay takes it yet" : answer.queued_position === 0 ? "playing now" : answer.queued_position + " ahead of it";
          $("test-answer").textContent = name + " sent to " + answer.listeners + " overlay(s): " + where + ".";
          refresh();
        }, function (error) { $("test-answer").textContent = error.message; });
      } }));
    });
  }

  // -- the designer ---------------------------------------------------------------------------
  function loadDesigns() {
    var code = state.code;
    return api(path("alerts")).then(function (answer) {
      if (code !== state.code) return;
      state.designs = answer;
      state.draft = JSON.parse(JSON.stringify({ default: answer.default || {}, events: answer.events || {} }));
      $("save-state").textContent = answer.source === "stored" ? "Saved (revision " + answer.revision + ")."
        : answer.source === "file" ? "From the --alert-designs file; saving stores them for this code."
        : "Starter designs: change them and save.";
      showEventChoices(); showTestButtons(); showSnippets(false); fillForm();
    });
  }
  function currentDesign(create) {
    if (state.eventName === "default") return state.draft.default;
    if (!state.draft.events[state.eventName] && create) state.draft.events[state.eventName] = {};
    return state.draft.events[state.eventName] || {};
  }
  function inherited() {
    var config = { base: state.designs.base, default: state.eventName === "default" ? {} : state.draft.default, events: {} };
    return global.AlertDesigns.designFor(config, state.eventName, {});
  }
  function showEventChoices() {
    var select = clear($("design-event")), snippetEvent = clear($("snippet-event"));
    select.appendChild(el("option", { value: "default", text: "every event (default)" }));
    eventNames().forEach(function (name) {
      select.appendChild(el("option", { value: name, text: name }));
      snippetEvent.appendChild(el("option", { value: name, text: name }));
    });
    select.value = state.eventName;
  }
  $("design-event").addEventListener("change", function () { state.eventName = $("design-event").value; fillForm(); });
  $("add-event-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var name = $("add-event-input").value.trim().toUpperCase().replace(/ /g, "_");
    if (!name) return;
    state.draft.events[name] = state.draft.events[name] || {};
    state.eventName = name; $("add-event-input").value = "";
    showEventChoices(); showTestButtons(); fillForm();
  });

  function fields() { return Array.prototype.slice.call(document.querySelectorAll("#designer [data-key]")); }
  function readKey(design, key) {
    if (key.indexOf("animation.") === 0) {
      var animation = design.animation;
      if (typeof animation === "string") return animation;
      return animation ? animation[key.slice(10)] : undefined;
    }
    return design[key];
  }
  function fillForm() {
    var design = currentDesign(false), fallback = inherited();
    fields().forEach(function (input) {
      var key = input.getAttribute("data-key"), own = readKey(design, key), effective = readKey(fallback, key);
      input.classList.remove("field-error");
      if (key === "variations") { input.value = own ? JSON.stringify(own, null, 1) : ""; return; }
      if (input.tagName === "SELECT" && key !== "voice" && key !== "mode") {
        var first = input.options[0];
        if (!first || first.value !== "") { first = el("option", { value: "" }); input.insertBefore(first, input.firstChild); }
        first.textContent = "as inherited (" + effective + ")";
      }
      if (key === "mode" && state.eventName === "default") input.options[0].textContent = "queue (the default)";
      if (input.type === "color" || input.type === "range") input.value = own !== undefined ? own : toColour(effective, input);
      else input.value = own !== undefined ? own : "";
      if (input.placeholder !== undefined && input.type !== "color" && input.type !== "range" && input.tagName !== "SELECT") {
        input.placeholder = effective === undefined || effective === "" ? input.getAttribute("data-hint") || "" : String(effective);
      }
    });
    $("sample").value = JSON.stringify(sampleFor(state.eventName));
    preview();
  }
  function toColour(value, input) {
    if (input.type === "range") return value === undefined ? 0.8 : value;
    return /^#[0-9a-fA-F]{6}$/.test(value || "") ? value : "#ffffff";
  }
  function sampleFor(name) {
    var samples = state.designs.samples || {};
    return samples[name] || { user: "TestUser", message: "Hello from the console" };
  }
  fields().forEach(function (input) {
    input.setAttribute("data-hint", input.placeholder || "");
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", function () {
      var design = currentDesign(true), key = input.getAttribute("data-key"), value = input.value;
      input.classList.remove("field-error");
      if (key === "variations") {
        try { if (value.trim()) design.variations = JSON.parse(value); else delete design.variations; }
        catch (err) { input.classList.add("field-error"); return; }
      } else if (key.indexOf("animation.") === 0) {
        var side = key.slice(10), animation = typeof design.animation === "object" ? design.animation : {};
        if (value) animation[side] = value; else delete animation[side];
        if (Object.keys(animation).length) {
          var other = side === "in" ? "out" : "in";
          if (!animation[other]) animation[other] = readKey(inherited(), "animation." + other) || "fade";
          design.animation = animation;
        } else delete design.animation;
      } else if (value === "") {
        delete design[key];
      } else if (input.type === "number" || input.type === "range") {
        design[key] = parseFloat(value);
      } else {
        design[key] = value;
      }
      preview();
    });
  });
  $("revert").addEventListener("click", function () { loadDesigns(); });

  $("save").addEventListener("click", function () {
    $("save-state").textContent = "Saving…";
    api(path("alerts"), { method: "PUT", headers: { "Content-Type": "application/json" },
                          body: JSON.stringify(state.draft) }).then(function (answer) {
      state.designs = answer;
      $("save-state").textContent = "Saved (revision " + answer.revision + "): overlays use it now.";
    }, function (error) {
      $("save-state").textContent = error.message;
      var found = /^(default|events\.([^.\s]+))\.([a-z_]+)/.exec(error.message);
      if (found) {
        var name = found[2] || "default";
        if (name !== state.eventName) { state.eventName = name; $("design-event").value = name; fillForm(); }
        var key = found[3] === "animation" ? "animation.in" : found[3];
        var input = document.querySelector('#designer [data-key="' + key + '"]');
        if (input) { input.classList.add("field-error"); input.focus(); }
      }
    });
  });

  function upload(input, key) {
    var file = input.files && input.files[0];
    if (!file) return;
    $("upload-state").textContent = "Uploading " + file.name + "…";
    api("media", { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file })
      .then(function (answer) {
        var field = document.querySelector('#designer [data-key="' + key + '"]');
        field.value = answer.url;
        field.dispatchEvent(new Event("input"));
        $("upload-state").textContent = file.name + " uploaded (" + Math.round(answer.bytes / 1024) + " KiB).";
      }, function (error) { $("upload-state").textContent = error.message; })
      .then(function () { input.value = ""; });
  }
  $("upload-image").addEventListener("change", function () { upload($("upload-image"), "image"); });
  $("upload-sound").addEventListener("change", function () { upload($("upload-sound"), "sound"); });

  function showVoices() {
    if (!global.speechSynthesis) return;
    var list = $("voice-list"), chosen = list.value;
    global.speechSynthesis.getVoices().forEach(function (voice) {
      if (!list.querySelector('option[value="' + CSS.escape(voice.name) + '"]')) {
        list.appendChild(el("option", { value: voice.name, text: voice.name + " (" + voice.lang + ")" }));
      }
    });
    list.value = chosen;
  }
  if (global.speechSynthesis) { showVoices(); global.speechSynthesis.addEventListener("voiceschanged", showVoices); }

  var previewAlert = null;
  function preview() {
    var stage = $("preview-canvas"), data;
    stage.style.transform = "scale(" + (($("preview").clientWidth || 640) / 1920) + ")";
    try { data = JSON.parse($("sample").value || "{}"); $("sample").classList.remove("field-error"); }
    catch (err) { $("sample").classList.add("field-error"); return; }
    var name = state.eventName === "default" ? "ALERT" : state.eventName;
    var config = { base: state.designs.base, default: state.draft.default, events: state.draft.events };
    var design = global.AlertDesigns.designFor(config, name, data);
    if (previewAlert) previewAlert.element.remove();
    previewAlert = global.AlertDesigns.render(design, name, data, { id: "preview" },
      { base: global.location.href, muted: !$("preview-sound").checked, scale: 1 });
    stage.appendChild(previewAlert.element);
    previewAlert.enter();
  }
  $("sample").addEventListener("input", preview);
  $("replay-preview").addEventListener("click", preview);
  global.addEventListener("resize", function () { if (state.designs) preview(); });

  // -- trigger snippets -------------------------------------------------------------------------
  var SNIPPET_FIELDS = {
    FOLLOW: { streamerbot: "user=%user%", firebot: "user=$username", nightbot: "user=$(user)" },
    SUB: { streamerbot: "user=%user%&message=%message%", firebot: "user=$username", nightbot: "user=$(user)" },
    RAID: { streamerbot: "user=%user%&viewers=%viewers%", firebot: "user=$username&viewers=$raidViewerCount", nightbot: "user=$(user)" },
    CHEER: { streamerbot: "user=%user%&amount=%bits%&message=%message%", firebot: "user=$username&amount=$cheerBitsAmount", nightbot: "user=$(user)" },
  };
  function showSnippets(revealed) {
    var name = $("snippet-event").value || "FOLLOW";
    var fieldsFor = SNIPPET_FIELDS[name] || { streamerbot: "user=%user%", firebot: "user=$username", nightbot: "user=$(user)" };
    var token = state.publishToken ? "&token=YOUR_PUBLISH_TOKEN" : "";
    var trigger = base + "notify?code=" + encodeURIComponent(state.code) + "&event=" + encodeURIComponent(name);
    var snippets = [
      ["curl (on Windows: curl.exe)", 'curl "' + trigger + "&user=bob" + token + '"'],
      ["PowerShell", 'Invoke-RestMethod "' + trigger + "&user=bob" + token + '"'],
      ["Streamer.bot: Core → Network → Fetch URL", trigger + "&" + fieldsFor.streamerbot + token],
      ["Firebot: HTTP Request effect (GET)", trigger + "&" + fieldsFor.firebot + token],
      ["Nightbot (needs an address Nightbot can reach)", "!addcom !" + name.toLowerCase() + " $(urlfetch " + trigger + "&" + fieldsFor.nightbot + "&reply=text" + token + ")"],
      ["Stream Deck: System → Website, “Access in background”", trigger + "&user=StreamDeck" + token],
    ];
    var box = clear($("snippets"));
    snippets.forEach(function (pair) {
      var holder = el("span", { className: "secret" });
      box.appendChild(el("div", { className: "snippet" }, [el("div", { className: "title", text: pair[0] }),
        el("div", { className: "body" }, [holder])]));
      secret(holder, pair[1], revealed);
    });
    $("token-hint").hidden = !state.publishToken;
  }
  $("snippet-event").addEventListener("change", function () { showSnippets(false); });

  // -- start ------------------------------------------------------------------------------------------
  var fromLink = /(?:^#|&)token=([^&]+)/.exec(global.location.hash);
  if (fromLink) {
    history.replaceState(null, "", global.location.pathname + global.location.search);  // off the screen
    signIn(decodeURIComponent(fromLink[1]));
  } else {
    var kept = null;
    try { kept = global.localStorage.getItem(TOKEN_KEY); } catch (err) { /* none */ }
    if (kept) signIn(kept); else signOut();
  }
})(window);
