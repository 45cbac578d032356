"""Alert designs: what a code's alerts look like, checked key by key.

A code's configuration is ``{"default": design, "events": {NAME: design}}``.
The overlay merges the built-in :data:`BASE_DESIGN`, the default design, the
event's design, then the first of its ``variations`` whose condition holds
(``"if": "amount >= 5"``). Every key is validated here, and a refusal names
the key (``events.FOLLOW.volume``) and what is allowed, so the console and a
hand-edited JSON file get the same sentence. Designs are data for the
renderer in ``web/static/alerts.js``: text goes into ``textContent``, media
into media elements, ``css`` into a style sheet; nothing here is ever HTML.
Nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ALERT_DESIGN_INVALID, ApiError
from ..events import validate_event_name

MODES = ("queue", "skip_if_busy", "replace_same", "interrupt")
ANIMATIONS = ("fade", "slide", "pop", "none")
LAYOUTS = ("above", "beside", "behind")
MAX_EVENTS = 100
MAX_VARIATIONS = 10
MAX_CONFIG_BYTES = 256 * 1024
# Keys the GET answer adds; a PUT of what GET answered is accepted and ignores them.
READ_ONLY_KEYS = frozenset({"revision", "updated", "source", "base", "samples"})

MEDIA_EXTENSIONS = {
    "image": ("gif", "png", "jpg", "jpeg", "webp", "avif", "webm", "mp4"),
    "sound": ("mp3", "ogg", "wav", "opus", "m4a"),
}
# An uploaded file is named by its SHA-256 (see media.py): ``media/<hex>.<ext>``.
UPLOADED_MEDIA = re.compile(r"media/[0-9a-f]{64}\.([a-z0-9]{2,5})")
MEDIA_URL = re.compile(r"https?://[^\s\"'<>()\\]{1,2000}")
COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}|(?:rgb|rgba|hsl|hsla)\([0-9.,%\s/+-]{1,60}\)"
                    r"|[a-zA-Z]{3,30}")
FONT = re.compile(r"[A-Za-z0-9 ,'\"_-]{1,100}")
FIELD = re.compile(r"[A-Za-z0-9_.$|-]{1,100}")
CONDITION = re.compile(
    r"\s*([A-Za-z0-9_.$-]{1,64})\s*(>=|<=|==|!=|>|<|contains)\s*(.{1,200}?)\s*")
ORDERING = (">=", "<=", ">", "<")

# What an alert looks like when nothing says otherwise: the look of the
# original overlay, with the name and the message both shown.
BASE_DESIGN: dict[str, Any] = {
    "title": "{title|EVENT}",
    "template": "{user|name|username}",
    "message": "{message|msg}",
    "image": "",
    "sound": "",
    "volume": 0.8,
    "tts": "",
    "voice": "",
    "rate": 1.0,
    "duration": 5.0,
    "animation": {"in": "fade", "out": "fade"},
    "layout": "above",
    "color": "#ffffff",
    "accent": "#ffb347",
    "background": "rgba(20, 20, 32, 0.88)",
    "font": "",
    "font_size": 36,
    "css": "",
}

# The console's starting point for a code with no designs of its own, and the
# event types it offers test buttons for.
STARTER_CONFIG: dict[str, Any] = {
    "default": {},
    "events": {
        "FOLLOW": {"title": "New follower", "template": "{user} followed!"},
        "SUB": {"title": "New subscriber", "template": "{user} subscribed!",
                "message": "{message}"},
        "RAID": {"title": "Raid!", "template": "{user} raided with {viewers} viewers!"},
        "CHEER": {"title": "Cheer", "template": "{user} cheered {amount|bits} bits!",
                  "message": "{message}"},
        "DONATION": {"title": "Donation", "template": "{user} donated {amount}!",
                     "message": "{message}", "tts": "message"},
    },
}
# Sample data the console's "test alert" button sends per event type.
SAMPLE_DATA: dict[str, dict[str, str]] = {
    "FOLLOW": {"user": "TestFollower"},
    "SUB": {"user": "TestSubscriber", "message": "Love the stream!", "months": "3"},
    "RAID": {"user": "TestRaider", "viewers": "42"},
    "CHEER": {"user": "TestCheerer", "amount": "100", "message": "Cheer100 nice play"},
    "DONATION": {"user": "TestDonor", "amount": "5", "message": "Keep it up!"},
}


@dataclass(frozen=True)
class Condition:
    """``field op value`` of a variation; evaluated by the overlay (alerts.js), checked here."""

    field: str
    op: str
    value: str | float


def parse_condition(text: Any, where: str) -> Condition:
    if not isinstance(text, str):
        raise _invalid(where, f"is a condition such as \"amount >= 5\" (got {_kind(text)})")
    found = CONDITION.fullmatch(text)
    if found is None:
        raise _invalid(where, f"{text!r} is not a condition: write <field> <op> <value>, op "
                              f"one of >= <= > < == != contains (for example \"amount >= 5\")")
    field_name, op, raw = found.groups()
    value: str | float = _unquoted(raw)
    number = _number(value)
    if op in ORDERING:
        if number is None:
            raise _invalid(where, f"{op} compares numbers, and {raw!r} is not one")
        value = number
    return Condition(field_name, op, value)


def validate_config(config: Any, where: str = "") -> dict[str, Any]:
    """The configuration, normalised (animations as ``{"in", "out"}``); 422 naming the bad key."""
    if not isinstance(config, dict):
        raise _invalid(where or "the body", f'is an object {{"default": {{...}}, "events": '
                                            f'{{"FOLLOW": {{...}}}}}} (got {_kind(config)})')
    clean: dict[str, Any] = {"default": {}, "events": {}}
    for key, value in config.items():
        path = _join(where, key)
        if key in READ_ONLY_KEYS:
            continue
        if key == "default":
            clean["default"] = validate_design(value, path, top=True)
        elif key == "events":
            clean["events"] = _validate_events(value, path)
        else:
            raise _invalid(path, "is not a key of an alert configuration: use \"default\" and "
                                 "\"events\"")
    return clean


def _validate_events(events: Any, where: str) -> dict[str, Any]:
    if not isinstance(events, dict):
        raise _invalid(where, f"maps event names to designs (got {_kind(events)})")
    if len(events) > MAX_EVENTS:
        raise _invalid(where, f"has {len(events)} event designs; at most {MAX_EVENTS}")
    clean = {}
    for name, design in events.items():
        path = _join(where, name)
        try:
            validate_event_name(name)
        except ApiError as error:
            raise _invalid(path, f"is not an event name: {error.message}") from None
        clean[name] = validate_design(design, path, top=True)
    return clean


def validate_design(design: Any, where: str, *, top: bool = False) -> dict[str, Any]:
    """One design; ``top`` designs (default, per event) may also hold ``mode`` and ``variations``."""
    if not isinstance(design, dict):
        raise _invalid(where, f"is a design object such as {{\"template\": \"{{user}} "
                              f"followed!\"}} (got {_kind(design)})")
    clean: dict[str, Any] = {}
    for key, value in design.items():
        path = _join(where, key)
        if top and key == "mode":
            clean[key] = _choice(value, path, MODES)
        elif top and key == "variations":
            clean[key] = _variations(value, path)
        elif key == "if" and not top:
            clean[key] = value
        elif key in DESIGN_KEYS:
            clean[key] = DESIGN_KEYS[key](value, path)
        else:
            allowed = sorted(DESIGN_KEYS) + (["mode", "variations"] if top else ["if"])
            raise _invalid(path, f"is not a design key; the keys are {', '.join(allowed)}")
    return clean


def _variations(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid(where, f'is a list of designs with a condition, such as [{{"if": '
                              f'"amount >= 5", "sound": "..."}}] (got {_kind(value)})')
    if len(value) > MAX_VARIATIONS:
        raise _invalid(where, f"has {len(value)} variations; at most {MAX_VARIATIONS}")
    clean = []
    for index, variation in enumerate(value):
        path = f"{where}[{index}]"
        if not isinstance(variation, dict) or "if" not in variation:
            raise _invalid(path, 'needs "if": a condition such as "amount >= 5"')
        parse_condition(variation["if"], f"{path}.if")
        clean.append(validate_design(variation, path))
    return clean


def modes_of(config: dict[str, Any]) -> dict[str, str]:
    """Queue mode per event name; ``"*"`` is the default design's (what the queue needs)."""
    modes = {name: design["mode"] for name, design in config.get("events", {}).items()
             if "mode" in design}
    if "mode" in config.get("default", {}):
        modes["*"] = config["default"]["mode"]
    return modes


# -- one checker per design key -----------------------------------------------

def _text(limit: int) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise _invalid(where, f"is text (got {_kind(value)})")
        if len(value) > limit:
            raise _invalid(where, f"is {len(value)} characters; at most {limit}")
        return value
    return check


def _number_between(low: float, high: float) -> Callable[[Any, str], float]:
    def check(value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise _invalid(where, f"is a number from {low:g} to {high:g} (got {_kind(value)})")
        if not low <= value <= high:
            raise _invalid(where, f"{value:g} is outside {low:g} to {high:g}")
        return value
    return check


def _media(kind: str) -> Callable[[Any, str], str]:
    extensions = MEDIA_EXTENSIONS[kind]

    def check(value: Any, where: str) -> str:
        if value == "":
            return value
        if not isinstance(value, str):
            raise _invalid(where, f"is a URL or an uploaded file (got {_kind(value)})")
        uploaded = UPLOADED_MEDIA.fullmatch(value)
        if uploaded is not None:
            if uploaded.group(1) not in extensions:
                raise _invalid(where, f"{value!r} is not a {kind} file: use "
                                      f"{', '.join(extensions)}")
            return value
        if MEDIA_URL.fullmatch(value) is None:
            raise _invalid(where, f"{value!r} is neither an http(s) URL nor an uploaded file "
                                  f"(media/<name> as the upload answered)")
        return value
    return check


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[Any, str], str]:
    def check(value: Any, where: str) -> str:
        if value == "":
            return value
        if not isinstance(value, str) or pattern.fullmatch(value) is None:
            raise _invalid(where, f"{value!r} is not {what}")
        return value
    return check


def _choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _invalid(where, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _animation(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, str):
        _choice(value, where, ANIMATIONS)
        return {"in": value, "out": value}
    if not isinstance(value, dict):
        raise _invalid(where, f'is one of {", ".join(ANIMATIONS)} or {{"in": ..., "out": ...}}')
    for key in value:
        if key not in ("in", "out"):
            raise _invalid(_join(where, key), 'is not an animation key: use "in" and "out"')
    return {side: _choice(value.get(side, "fade"), _join(where, side), ANIMATIONS)
            for side in ("in", "out")}


DESIGN_KEYS: dict[str, Callable[[Any, str], Any]] = {
    "title": _text(300),
    "template": _text(500),
    "message": _text(500),
    "image": _media("image"),
    "sound": _media("sound"),
    "volume": _number_between(0, 1),
    "tts": _pattern(FIELD, "a data field name (letters, digits, _ . -), such as message"),
    "voice": _text(100),
    "rate": _number_between(0.1, 4),
    "duration": _number_between(0.5, 120),
    "animation": _animation,
    "layout": lambda value, where: _choice(value, where, LAYOUTS),
    "color": _pattern(COLOUR, "a CSS colour (#rrggbb, rgb(...), hsl(...) or a name)"),
    "accent": _pattern(COLOUR, "a CSS colour (#rrggbb, rgb(...), hsl(...) or a name)"),
    "background": _pattern(COLOUR, "a CSS colour (#rrggbb, rgba(...), hsl(...) or a name)"),
    "font": _pattern(FONT, "a font family such as \"Comic Sans MS\", sans-serif"),
    "font_size": _number_between(8, 300),
    "css": _text(20_000),
}


# -- helpers ----------------------------------------------------------------------

def _invalid(where: str, what: str) -> ApiError:
    return ALERT_DESIGN_INVALID(f"{where or 'the configuration'} {what}.")


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__.replace("dict", "object") \
        .replace("list", "array").replace("str", "text")


def _unquoted(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
