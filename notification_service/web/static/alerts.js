/*!
 * alerts.js: draws one alert from a code's designs (the overlay and the console's preview).
 *
 *   var design = AlertDesigns.designFor(config, "FOLLOW", data);  // base <- default <- event <- variation
 *   var alert = AlertDesigns.render(design, "FOLLOW", data, {id: meta.id});
 *   stage.appendChild(alert.element); alert.enter(); ... alert.leave(done);
 *
 * Templates: {field} from the event data, {a.b} into nested objects, {a|b} the
 * first that is set, {EVENT} the event name with spaces. Everything from the
 * event is set as text (textContent) or as a media element's src: never HTML.
 * Media are http(s) URLs or uploads ("media/<hash>.gif"), resolved against the
 * server's base (the folder above this page), so a sub-path behind a proxy works.
 */
(function (global) {
  "use strict";

  var ANIMATION_MS = 600;
  var PLACEHOLDER = /\{([A-Za-z0-9_.$|-]{1,100})\}/g;
  var CONDITION = /^\s*([A-Za-z0-9_.$-]{1,64})\s*(>=|<=|==|!=|>|<|contains)\s*(.{1,200}?)\s*$/;
  var FALLBACK_BASE = {
    title: "{title|EVENT}", template: "{user|name|username}", message: "{message|msg}",
    image: "", sound: "", volume: 0.8, tts: "", voice: "", rate: 1, duration: 5,
    animation: { in: "fade", out: "fade" }, layout: "above", color: "#ffffff",
    accent: "#ffb347", background: "rgba(20, 20, 32, 0.88)", font: "", font_size: 36, css: "",
  };

  function lookup(data, path) {
    var value = data;
    var parts = path.split(".");
    for (var i = 0; i < parts.length; i++) {
      if (value === null || typeof value !== "object" || !(parts[i] in value)) return undefined;
      value = value[parts[i]];
    }
    return value;
  }

  function text(value) {
    if (value === undefined || value === null) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function field(data, spec, eventName) {
    var choices = spec.split("|");
    for (var i = 0; i < choices.length; i++) {
      var value = lookup(data, choices[i]);
      if (value === undefined && choices[i] === "EVENT") value = eventName.replace(/_/g, " ");
      var shown = text(value);
      if (shown !== "") return shown;
    }
    return "";
  }

  /** The template with every {placeholder} filled from data (plain text). */
  function fill(template, data, eventName) {
    var fields = data !== null && typeof data === "object" ? data : { message: data };
    return String(template || "").replace(PLACEHOLDER, function (_all, spec) {
      return field(fields, spec, eventName || "");
    });
  }

  function unquoted(raw) {
    if (raw.length >= 2 && raw[0] === raw[raw.length - 1] && (raw[0] === '"' || raw[0] === "'")) {
      return raw.slice(1, -1);
    }
    return raw;
  }

  /** Whether a variation's condition ("amount >= 5") holds for data (as the server checked it). */
  function holds(condition, data) {
    var found = CONDITION.exec(String(condition || ""));
    if (!found) return false;
    var actual = lookup(data || {}, found[1]);
    var expected = unquoted(found[3]);
    var op = found[2];
    var a = parseFloat(actual), b = parseFloat(expected);
    var numeric = isFinite(a) && isFinite(b) && String(actual).trim() !== "";
    switch (op) {
      case ">=": return numeric && a >= b;
      case "<=": return numeric && a <= b;
      case ">": return numeric && a > b;
      case "<": return numeric && a < b;
      case "==": return numeric ? a === b : text(actual) === expected;
      case "!=": return numeric ? a !== b : text(actual) !== expected;
      case "contains": return text(actual).toLowerCase().indexOf(expected.toLowerCase()) !== -1;
    }
    return false;
  }

  function merge(into, design) {
    if (!design) return into;
    Object.keys(design).forEach(function (key) {
      if (key !== "variations" && key !== "mode" && key !== "if") into[key] = design[key];
    });
    return into;
  }

  function eventDesign(config, eventName) {
    var events = (config && config.events) || {};
    return events[eventName] || events[String(eventName).toUpperCase()] || null;
  }

  /** The design an event gets: base, then default, then the event's, then the first variation that holds. */
  function designFor(config, eventName, data) {
    config = config || {};
    var design = merge({}, config.base || FALLBACK_BASE);
    merge(design, config.default);
    var own = eventDesign(config, eventName);
    merge(design, own);
    var variations = ((own && own.variations) || []).concat(
      (config.default && config.default.variations) || []);
    for (var i = 0; i < variations.length; i++) {
      if (holds(variations[i].if, data)) { merge(design, variations[i]); break; }
    }
    if (typeof design.animation === "string") design.animation = { in: design.animation, out: design.animation };
    return design;
  }

  /** The queue mode of an event (queue, skip_if_busy, replace_same, interrupt). */
  function modeFor(config, eventName) {
    var own = eventDesign(config, eventName);
    return (own && own.mode) || (config && config.default && config.default.mode) || "queue";
  }

  function mediaUrl(ref, base) {
    if (!ref) return "";
    if (/^https?:\/\//i.test(ref)) return ref;
    if (/^media\/[0-9a-f]{64}\.[a-z0-9]{2,5}$/.test(ref)) return new URL("../" + ref, base || global.location.href).href;
    return "";
  }

  function isVideo(url) { return /\.(webm|mp4)([?#]|$)/i.test(url); }

  function speak(design, eventName, data) {
    if (!design.tts || !global.speechSynthesis || !global.SpeechSynthesisUtterance) return null;
    var words = field(data !== null && typeof data === "object" ? data : { message: data }, design.tts, eventName);
    if (!words) return null;
    var utterance = new global.SpeechSynthesisUtterance(words.slice(0, 500));
    utterance.rate = Number(design.rate) || 1;
    utterance.volume = design.volume === undefined ? 1 : Number(design.volume);
    if (design.voice) {
      var wanted = String(design.voice).toLowerCase();
      var voice = global.speechSynthesis.getVoices().filter(function (v) {
        return v.name.toLowerCase().indexOf(wanted) !== -1;
      })[0];
      if (voice) utterance.voice = voice;
    }
    global.speechSynthesis.speak(utterance);
    return utterance;
  }

  /**
   * Build the element for one alert. options: {base: URL the media resolve against,
   * muted: no sound or speech (the console's preview), durationMs}.
   * Returns {element, durationMs, enter(), leave(done)}.
   */
  function render(design, eventName, data, meta, options) {
    options = options || {};
    var card = document.createElement("div");
    card.className = "alert layout-" + (design.layout || "above");
    card.setAttribute("data-event", eventName);
    card.setAttribute("data-event-id", (meta && meta.id) || "");
    card.style.color = design.color || "";
    card.style.background = design.background || "";
    card.style.setProperty("--accent", design.accent || "#ffb347");
    if (design.font) card.style.fontFamily = design.font;
    var scale = options.scale || (global.innerHeight || 1080) / 1080;
    card.style.fontSize = Math.round((Number(design.font_size) || 36) * scale) + "px";

    var imageUrl = mediaUrl(design.image, options.base);
    var media = null;
    if (imageUrl) {
      media = document.createElement(isVideo(imageUrl) ? "video" : "img");
      media.className = "media";
      if (media.tagName === "VIDEO") {
        media.muted = true; media.loop = true; media.autoplay = true; media.playsInline = true;
      } else {
        media.alt = "";
      }
      media.src = imageUrl;
      card.appendChild(media);
    }
    var words = document.createElement("div");
    words.className = "words";
    [["title", design.title], ["text", design.template], ["message", design.message]].forEach(function (part) {
      var line = fill(part[1], data, eventName);
      if (!line) return;
      var element = document.createElement("div");
      element.className = part[0];
      element.textContent = line;
      words.appendChild(element);
    });
    card.appendChild(words);

    var style = null;
    if (design.css) {
      style = document.createElement("style");
      style.textContent = design.css;  // CSS text, set as text: never parsed as HTML
    }
    var sound = null;
    var animation = design.animation || { in: "fade", out: "fade" };
    var durationMs = options.durationMs || Math.max(500, (Number(design.duration) || 5) * 1000);

    return {
      element: card,
      durationMs: durationMs,
      animationMs: ANIMATION_MS,
      enter: function () {
        if (style) document.head.appendChild(style);
        card.classList.add("in-" + (animation.in || "fade"));
        if (media && media.tagName === "VIDEO") media.play().catch(function () {});
        if (options.muted) return;
        var soundUrl = mediaUrl(design.sound, options.base);
        if (soundUrl) {
          sound = new Audio(soundUrl);
          sound.volume = design.volume === undefined ? 0.8 : Number(design.volume);
          sound.play().catch(function (err) { console.warn("alert sound did not play: " + err); });
        }
        speak(design, eventName, data);
      },
      leave: function (done) {
        var out = animation.out || "fade";
        card.classList.remove("in-" + (animation.in || "fade"));
        card.classList.add("out-" + out);
        setTimeout(function () {
          if (style) style.remove();
          if (sound) sound.pause();
          card.remove();
          if (done) done();
        }, out === "none" ? 0 : ANIMATION_MS);
      },
    };
  }

  global.AlertDesigns = {
    fill: fill, holds: holds, designFor: designFor, modeFor: modeFor, render: render,
    mediaUrl: mediaUrl, ANIMATION_MS: ANIMATION_MS, FALLBACK_BASE: FALLBACK_BASE,
  };
})(window);
