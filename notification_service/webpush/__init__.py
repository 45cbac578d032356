"""Web Push: VAPID keys, stored subscriptions, an async sender and its HTTP API.

Modules, one concern each: :mod:`.keys` (VAPID key files and the subject),
:mod:`.endpoints` (which push services we may POST to), :mod:`.store`
(subscriptions that survive a restart), :mod:`.crypto` (RFC 8291 encryption),
:mod:`.sender` (one aiohttp session, cached VAPID headers, retries),
:mod:`.transport` (the Hub's way out to push subscribers), :mod:`.pusher`
(solidwebpush's Python verbs), :mod:`.routes` (the HTTP API) and
:mod:`.service` (wiring into an aiohttp app). Nothing here imports the app.
"""
