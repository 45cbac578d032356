"""JWT verification: turns a bearer token into an :class:`~.access.Identity`.

A JWT names a user (``sub``) of an application (``iss``); the server only
verifies tokens that an application's own auth service signed, with a shared
HS256 secret (``--jwt-secret``) or a public key (``--jwt-public-key``, RS256 or
ES256 by the key's type). Every refusal says which check failed, so an
integrator can fix their token without reading our source.

This module must never accept ``alg: none``, never let the token choose an
algorithm the server was not configured for (an RSA public key used as an HMAC
secret is the classic forgery), and never log a token.

PyJWT (and the parts of cryptography it loads, about 1.3 MB of RSS) is
imported when a key is configured or a token arrives, not at start.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from aiohttp import web

from .access import Identity
from .errors import (JWT_NOT_CONFIGURED, TOKEN_ALG_NONE, TOKEN_ALG_NOT_ALLOWED, TOKEN_BAD_CLAIMS,
                     TOKEN_BAD_SIGNATURE, TOKEN_EXPIRED, TOKEN_MALFORMED, ApiError)
from .events import validate_channel

log = logging.getLogger(__name__)


REQUIRED_CLAIMS = ("sub", "iss", "iat", "exp")
DEFAULT_LEEWAY_SECONDS = 10.0
NAME_MAX_LENGTH = 128
CHANNEL_CHARACTERS_TEXT = "A-Z a-z 0-9 _ . ~ - : @ / + = |"


class JwtVerifier:
    """Verifies JWTs against the configured keys.

    :param secret: HS256 shared secret, the seed service's ``JWT_SECRET``.
        Shorter than 32 bytes works but is logged as weak at start-up.
    :param public_key_pem: PEM public key; an RSA key accepts RS256, an EC
        P-256 key ES256. Use it when the issuer should be the only party able
        to mint tokens (a shared secret lets this server mint them too).
    :param leeway: seconds of clock skew tolerated on ``exp`` and ``iat``.
    """

    def __init__(self, *, secret: str | None = None, public_key_pem: bytes | None = None,
                 leeway: float = DEFAULT_LEEWAY_SECONDS) -> None:
        self.leeway = leeway
        self._keys: dict[str, Any] = {}
        self._quiet_short_secret = False
        if secret:
            self._keys["HS256"] = secret
            if len(secret.encode()) < 32:
                self._quiet_short_secret = True
                log.warning("the JWT secret is shorter than 32 bytes: anyone who guesses it "
                            "can mint tokens; use a long random value")
        if public_key_pem:
            from cryptography.hazmat.primitives.asymmetric import ec, rsa
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
            try:
                key = load_pem_public_key(public_key_pem)
            except ValueError:
                raise ValueError("not a PEM public key (-----BEGIN PUBLIC KEY-----); "
                                 "make one with: openssl pkey -in jwt.key -pubout") from None
            if isinstance(key, rsa.RSAPublicKey):
                self._keys["RS256"] = key
            elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
                self._keys["ES256"] = key
            else:
                raise ValueError("the JWT public key must be an RSA key (RS256) "
                                 "or an EC P-256 key (ES256)")

    @classmethod
    def from_files(cls, *, secret: str | None, public_key_file: Path | None,
                   leeway: float = DEFAULT_LEEWAY_SECONDS) -> "JwtVerifier":
        pem = public_key_file.read_bytes() if public_key_file else None
        try:
            return cls(secret=secret, public_key_pem=pem, leeway=leeway)
        except ValueError as error:  # cryptography's message names no file
            raise ValueError(f"--jwt-public-key {public_key_file}: {error}") from None

    @property
    def algorithms(self) -> list[str]:
        return sorted(self._keys)

    @property
    def configured(self) -> bool:
        return bool(self._keys)

    def verify(self, token: str) -> Identity:
        """Return the identity ``token`` proves, or raise a 401 that names the failed check."""
        if not self._keys:
            raise JWT_NOT_CONFIGURED(
                "This server verifies no JWTs: start it with --jwt-secret or --jwt-public-key.")
        import jwt
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise TOKEN_MALFORMED(f"The token is not a JWT ({error}); send the three "
                                  f"base64url parts your auth service issued.") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm.lower() == "none":
            raise TOKEN_ALG_NONE("Unsigned tokens (alg: none) are refused; sign it with "
                                 f"{' or '.join(self.algorithms)}.")
        key = self._keys.get(algorithm)
        if key is None:
            raise TOKEN_ALG_NOT_ALLOWED(f"The token is signed with {algorithm}, but this server "
                                        f"accepts only {' or '.join(self.algorithms)}.")
        claims = self._decode(token, key, algorithm)
        return _identity_from(claims)

    def _decode(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        import jwt
        try:
            if self._quiet_short_secret and algorithm == "HS256":
                with warnings.catch_warnings():  # already logged once at start-up
                    warnings.simplefilter("ignore", getattr(jwt, "InsecureKeyLengthWarning",
                                                            UserWarning))
                    return self._decode_checked(token, key, algorithm)
            return self._decode_checked(token, key, algorithm)
        except jwt.InvalidSignatureError:
            raise TOKEN_BAD_SIGNATURE("The token's signature does not match this server's "
                                      "key: it was signed with another secret or key.") from None
        except jwt.ExpiredSignatureError:
            raise TOKEN_EXPIRED("The token has expired (exp is in the past): ask your "
                                "auth service for a new one.") from None
        except jwt.MissingRequiredClaimError as error:
            raise TOKEN_BAD_CLAIMS(f"The token lacks the '{error.claim}' claim; "
                                   f"sub, iss, iat and exp are required.") from None
        except jwt.ImmatureSignatureError:
            raise TOKEN_BAD_CLAIMS("The token is not valid yet (iat or nbf is in the future): "
                                   "check the issuer's clock.") from None
        except jwt.DecodeError as error:
            raise TOKEN_MALFORMED(f"The token cannot be decoded: {error}.") from None
        except jwt.InvalidTokenError as error:
            raise TOKEN_BAD_CLAIMS(f"The token's claims are invalid: {error}.") from None

    def _decode_checked(self, token: str, key: Any, algorithm: str) -> dict[str, Any]:
        import jwt
        return jwt.decode(token, key, algorithms=[algorithm], leeway=self.leeway,
                          options={"require": list(REQUIRED_CLAIMS), "verify_aud": False})


def _identity_from(claims: dict[str, Any]) -> Identity:
    """The identity, if its channels are valid channel names (so every producer can target them).

    ``iss`` may hold ':' (issuers are often URLs), so ``jwt:{iss}:{sub}`` could
    spell another issuer's ``jwt:{iss}``; that grants nothing, because every
    issuer is trusted through the same key, which can sign any ``iss`` anyway.
    """
    subject, issuer = claims.get("sub"), claims.get("iss")
    for claim, value in (("sub", subject), ("iss", issuer)):
        if not isinstance(value, str) or not 0 < len(value) <= NAME_MAX_LENGTH:
            raise TOKEN_BAD_CLAIMS(f"{claim} must be a string of 1 to {NAME_MAX_LENGTH} "
                                   f"characters.")
    identity = Identity(application=issuer, user=subject)
    try:
        validate_channel(identity.user_channel)
    except ApiError:
        raise TOKEN_BAD_CLAIMS(f"iss and sub may use only {CHANNEL_CHARACTERS_TEXT}: they name "
                               f"the channels jwt:{{iss}} and jwt:{{iss}}:{{sub}}.") from None
    return identity


JWT_VERIFIER_KEY = web.AppKey("jwt_verifier", JwtVerifier)
