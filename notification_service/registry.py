"""Who is connected with a JWT identity, over any transport, and the routes that list it.

Transports add a connection when a listener proves an identity (SSE with a
bearer JWT, socket.io with ``auth: {token}``) and remove it when it goes. The
routes answer the seed-3 shape (user -> connection id -> details) plus a
``transport`` field. Indexed by application and user, so listing one
application never scans the others.

Bounded: at most ``max_per_application`` connections per application (429
past it, so one application's users cannot crowd out the others) and
``max_total`` in all (507). Transports call :meth:`ConnectionRegistry.admit`
before they accept an identified listener, with no await between it and
:meth:`ConnectionRegistry.add`, so the bounds hold exactly.

This module must never list anonymous listeners: a listening code is a secret,
and only connections that identified themselves belong to an application.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import jsoncodec
from .access import Identity
from .config import SETTINGS_KEY
from .errors import (APPLICATION_CONNECTIONS_FULL, CONNECTIONS_FORBIDDEN, CONNECTIONS_FULL,
                     TOKEN_MISSING)
from .identity import JWT_VERIFIER_KEY
from .tokens import presented_token, secrets_equal


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One identified connection. ``created_at`` is Unix seconds, as in the seed."""

    id: str
    identity: Identity
    transport: str
    remote_addr: str = ""
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_dict(self, *, with_address: bool = True) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "remote_addr": self.remote_addr if with_address else "",
            "application": {"id": self.identity.application},
            "user": {"id": self.identity.user},
            "transport": self.transport,
        }


class ConnectionRegistry:
    """Identified connections by application, then user, then connection id.

    :param max_per_application: connections one application may have listed
        (``--max-connections-per-application``).
    :param max_total: connections of every application together
        (``--max-identified-connections``).
    """

    def __init__(self, max_per_application: int = 10_000, max_total: int = 100_000) -> None:
        self.max_per_application = max_per_application
        self.max_total = max_total
        self._applications: dict[str, dict[str, dict[str, ConnectionInfo]]] = {}
        self._per_application: dict[str, int] = {}
        self.total = 0

    def admit(self, identity: Identity | None) -> None:
        """Raise 429/507 if a connection of ``identity`` would pass a bound (None: anonymous)."""
        if identity is None:
            return
        if self.total >= self.max_total:
            raise CONNECTIONS_FULL(
                f"This server already lists {self.max_total} identified connections "
                f"(--max-identified-connections); try again later.")
        if self._per_application.get(identity.application, 0) >= self.max_per_application:
            raise APPLICATION_CONNECTIONS_FULL(
                f"The application '{identity.application}' already has "
                f"{self.max_per_application} connections (--max-connections-per-application); "
                f"close some, or try again later.", {"Retry-After": "30"})

    def add(self, connection: ConnectionInfo) -> None:
        identity = connection.identity
        users = self._applications.setdefault(identity.application, {})
        connections = users.setdefault(identity.user, {})
        if connection.id not in connections:
            self.total += 1
            self._per_application[identity.application] = (
                self._per_application.get(identity.application, 0) + 1)
        connections[connection.id] = connection

    def remove(self, connection: ConnectionInfo) -> None:
        identity = connection.identity
        users = self._applications.get(identity.application)
        if users is None:
            return
        connections = users.get(identity.user)
        if connections is None:
            return
        if connections.pop(connection.id, None) is not None:
            self.total -= 1
            remaining = self._per_application.get(identity.application, 1) - 1
            if remaining > 0:
                self._per_application[identity.application] = remaining
            else:
                self._per_application.pop(identity.application, None)
        if not connections:
            del users[identity.user]
            if not users:
                del self._applications[identity.application]

    def application(self, application: str, *, with_addresses: bool = True
                    ) -> dict[str, dict[str, dict[str, Any]]]:
        """The seed's ``GET /connections/{application_id}`` body."""
        users = self._applications.get(application, {})
        return {user: {cid: info.to_dict(with_address=with_addresses)
                       for cid, info in connections.items()}
                for user, connections in users.items()}

    def user(self, application: str, user: str, *, with_addresses: bool = True
             ) -> dict[str, dict[str, Any]]:
        """The seed's ``GET /connections/{application_id}/{user_id}`` body."""
        connections = self._applications.get(application, {}).get(user, {})
        return {cid: info.to_dict(with_address=with_addresses)
                for cid, info in connections.items()}

    async def listing(self, application: str, user: str | None = None, *,
                      with_addresses: bool = True) -> dict[str, Any]:
        """What the routes answer: :meth:`application`, or :meth:`user` when ``user`` is given.

        Async because with ``--redis-url`` the listing includes every node's
        connections (:mod:`.cluster.connections`).
        """
        if user is None:
            return self.application(application, with_addresses=with_addresses)
        return self.user(application, user, with_addresses=with_addresses)


def require_application_access(request: web.Request, application: str) -> bool:
    """Allow the admin token, or a JWT issued by ``application``; else 401/403 with why.

    Returns True for the admin. Only the admin sees remote addresses: any user's
    token of an application may list it, and one user's IP address is not
    another user's business (the seed answers ``""`` there too).
    """
    token = presented_token(request)
    if token is None:
        raise TOKEN_MISSING("Listing connections needs 'Authorization: Bearer <JWT>' with "
                            "iss = the application, or the admin token.")
    admin_token = request.app[SETTINGS_KEY].admin_token
    if admin_token is not None and secrets_equal(token, admin_token):
        return True
    identity = request.app[JWT_VERIFIER_KEY].verify(token)
    if identity.application != application:
        raise CONNECTIONS_FORBIDDEN(
            f"Your token was issued by '{identity.application}'; it may list only that "
            f"application's connections.")
    return False


async def list_application(request: web.Request) -> web.Response:
    application = request.match_info["application_id"]
    admin = require_application_access(request, application)
    listing = await request.app[REGISTRY_KEY].listing(application, with_addresses=admin)
    return web.json_response(listing, dumps=jsoncodec.dumps)


async def list_user(request: web.Request) -> web.Response:
    application = request.match_info["application_id"]
    admin = require_application_access(request, application)
    user = request.match_info["user_id"]
    listing = await request.app[REGISTRY_KEY].listing(application, user,
                                                     with_addresses=admin)
    return web.json_response(listing, dumps=jsoncodec.dumps)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/connections/{application_id}", list_application,
                       name="connections-application")
    app.router.add_get("/connections/{application_id}/{user_id}", list_user,
                       name="connections-user")


REGISTRY_KEY = web.AppKey("connection_registry", ConnectionRegistry)
