"""Browser Notification Service: real-time events to web pages, SSE streams and Web Push.

Every way in becomes one :class:`~notification_service.events.Event`, one
:class:`~notification_service.hub.Hub` publishes it, every way out delivers it.
"""

__version__ = "0.1.0"
