"""The SSRF guard: only https push services on the allow-list, http only when allowed."""

from __future__ import annotations

import pytest

from notification_service.webpush.endpoints import EndpointPolicy, EndpointRefused, origin


@pytest.mark.parametrize("endpoint", [
    "https://fcm.googleapis.com/fcm/send/abc:def",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
    "https://web.push.apple.com/QGuQyavXutnMH",
    "https://wns2-bl2p.notify.windows.com/w/?token=BQYAAA",
    "https://FCM.googleapis.com/fcm/send/x",
])
def test_browser_push_services_are_allowed(endpoint):
    assert EndpointPolicy().check(endpoint) == endpoint


@pytest.mark.parametrize("endpoint, reason", [
    ("http://fcm.googleapis.com/fcm/send/x", "https"),
    ("https://127.0.0.1/push", "not a known push service"),
    ("https://localhost:8080/admin", "not a known push service"),
    ("https://169.254.169.254/latest/meta-data", "not a known push service"),
    ("https://fcm.googleapis.com.evil.example/x", "not a known push service"),
    ("https://evilfcm.googleapis.com/x", "not a known push service"),
    ("https://notify.windows.com.attacker.net/x", "not a known push service"),
    ("https://user:pw@fcm.googleapis.com/x", "user name"),
    ("https://attacker.example@fcm.googleapis.com/x", "user name"),
    ("ftp://fcm.googleapis.com/x", "https"),
    ("file:///etc/passwd", "https"),
    ("https://fcm.googleapis.com:99999/x", "not a valid URL"),
    ("https://fcm.googleapis.com/x y", "without spaces"),
    ("https://fcm.googleapis.com/" + "a" * 2100, "longer"),
    ("", "no endpoint"),
])
def test_everything_else_is_refused_with_a_reason(endpoint, reason):
    with pytest.raises(EndpointRefused, match=reason):
        EndpointPolicy().check(endpoint)


def test_added_hosts_and_http_only_when_asked():
    assert EndpointPolicy(("push.example.org",)).check("https://push.example.org/x")
    assert EndpointPolicy(("*.example.org",)).check("https://a.b.example.org/x")
    with pytest.raises(EndpointRefused, match="--webpush-allow-http"):
        EndpointPolicy(("127.0.0.1:9",)).check("http://127.0.0.1:9/push/x")
    allowed = EndpointPolicy(("127.0.0.1:9",), allow_http=True)
    assert allowed.check("http://127.0.0.1:9/push/x")
    with pytest.raises(EndpointRefused, match="not a known push service"):
        allowed.check("http://10.0.0.1/push/x")  # http does not widen the host list


def test_origin_is_the_vapid_audience():
    assert origin("https://fcm.googleapis.com/fcm/send/x") == "https://fcm.googleapis.com"
    assert origin("http://127.0.0.1:8123/push/t") == "http://127.0.0.1:8123"
