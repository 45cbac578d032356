"""Who may listen on which channel: one rule set for every transport.

- ``jwt:{iss}`` and ``jwt:{iss}:{sub}`` belong to JWT identities: only a
  listener authenticated as that application (and user) may listen.
- ``space::name`` channels are private: listening needs the space's secret.
- Every other channel is public: knowing its name is enough (a listening code
  is a secret in that sense, so codes are never listed anywhere).

Transports ask :meth:`ChannelAccess.check_listen` and answer a refusal in their
own way; they never decide policy themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from .errors import LISTEN_REFUSED
from .tokens import secrets_equal

SPACE_SEPARATOR = "::"
JWT_PREFIX = "jwt:"


@dataclass(frozen=True, slots=True)
class Identity:
    """A listener proven by a verified JWT: ``iss`` names the application, ``sub`` the user."""

    application: str
    user: str

    @property
    def user_channel(self) -> str:
        return f"{JWT_PREFIX}{self.application}:{self.user}"

    @property
    def application_channel(self) -> str:
        return f"{JWT_PREFIX}{self.application}"


class SpaceSecrets(Protocol):
    """Where the secrets of private spaces are kept (set at runtime by backends)."""

    def get(self, space: str) -> str | None: ...


class NoSpaceSecrets:
    """No space has a secret: every private channel is refused, with that reason."""

    def get(self, space: str) -> str | None:
        return None


class ChannelAccess:
    def __init__(self, spaces: SpaceSecrets | None = None) -> None:
        self.spaces: SpaceSecrets = spaces or NoSpaceSecrets()

    def check_listen(self, channel: str, *, secret: str | None = None,
                     identity: Identity | None = None) -> None:
        """Raise :data:`LISTEN_REFUSED` with the reason unless this listener may join."""
        if channel.startswith(JWT_PREFIX):
            allowed = identity is not None and channel in (
                identity.user_channel, identity.application_channel)
            if not allowed:
                raise LISTEN_REFUSED(
                    f"'{channel}' belongs to a JWT identity: connect with a token whose "
                    f"iss (and sub) match it.")
            return
        space, separator, _name = channel.partition(SPACE_SEPARATOR)
        if not separator:
            return
        expected = self.spaces.get(space)
        if expected is None:
            raise LISTEN_REFUSED(f"The space '{space}' has no secret set, so its channels "
                                 f"cannot be joined yet (PUT /admin/spaces/{space}).")
        if not secrets_equal(secret, expected):
            raise LISTEN_REFUSED(f"Wrong or missing secret for the space '{space}'.")


ACCESS_KEY = web.AppKey("channel_access", ChannelAccess)
