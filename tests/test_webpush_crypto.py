"""Encryption: the RFC 8291 example byte for byte, and the 4,096-byte body limit."""

from __future__ import annotations

import os

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from notification_service.webpush import crypto

from .pushservice import BrowserSubscriber

# RFC 8291 Appendix A
PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
UA_PUBLIC = ("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZ"
             "GH6SRpkNtoIAiw4")
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
BODY = ("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocI"
        "nmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWG"
        "NWQexSgSxsj_Qulcy4a-fN")


def private_key(b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(crypto.b64url_decode(b64), "big"), ec.SECP256R1())


def test_rfc8291_appendix_a_body_byte_for_byte():
    body = crypto.encrypt(PLAINTEXT, crypto.b64url_decode(UA_PUBLIC), crypto.b64url_decode(AUTH),
                          server_key=private_key(AS_PRIVATE), salt=crypto.b64url_decode(SALT))
    assert crypto.b64url_encode(body) == BODY
    # and the user agent of the example reads it back
    assert http_ece.decrypt(body, private_key=private_key(UA_PRIVATE),
                            auth_secret=crypto.b64url_decode(AUTH), version="aes128gcm") == PLAINTEXT


def test_largest_message_fills_exactly_one_4096_byte_body():
    browser = BrowserSubscriber()
    keys = browser.to_json()["keys"]
    body = crypto.encrypt(b"x" * 3993, crypto.b64url_decode(keys["p256dh"]), browser.auth)
    assert len(body) == 4096
    assert http_ece.decrypt(body, private_key=browser.private_key, auth_secret=browser.auth,
                            version="aes128gcm") == b"x" * 3993
    with pytest.raises(ValueError, match="3993"):
        crypto.encrypt(b"x" * 3994, crypto.b64url_decode(keys["p256dh"]), os.urandom(16))


def test_every_message_has_a_fresh_key_and_salt():
    browser = BrowserSubscriber()
    p256dh = crypto.b64url_decode(browser.to_json()["keys"]["p256dh"])
    first, second = (crypto.encrypt(b"same", p256dh, browser.auth) for _ in range(2))
    assert first[:16] != second[:16] and first[21:86] != second[21:86]
