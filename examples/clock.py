#!/usr/bin/env python3
"""Publish the time every second: ws-emit's ``time`` example for this server.

Run the server, open http://127.0.0.1:8080/sources/clock.html, then:

    python examples/clock.py                       # POST /broadcast/time/update
    python examples/clock.py --secret MySecret     # POST /emit (ws-emit JSON) instead

Standard library only, so it runs anywhere Python does. Each tick prints the
server's delivery report, so you can see how many pages got it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def publish(url: str, channel: str, event: str, data: object, *, token: str | None,
            secret: str | None) -> dict:
    """One POST: /emit when a ws-emit secret is given, else /broadcast."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if secret is not None:
        target = f"{url}/emit"
        body = {"event": event, "room": channel, "data": data, "namespace": None, "secret": secret}
    else:
        quoted = urllib.parse.quote(channel, safe="")
        target = f"{url}/broadcast/{quoted}/{urllib.parse.quote(event, safe='')}"
        body = data
    request = urllib.request.Request(target, data=json.dumps(body).encode(), headers=headers,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("NOTIFY_URL", "http://127.0.0.1:8080"),
                        help="Server URL [env: NOTIFY_URL]")
    parser.add_argument("--channel", default="time")
    parser.add_argument("--event", default="update")
    parser.add_argument("--token", default=os.environ.get("NOTIFY_PUBLISH_TOKEN"),
                        help="Publish token, if the server has one [env: NOTIFY_PUBLISH_TOKEN]")
    parser.add_argument("--secret", default=None, help="Publish through /emit with this secret")
    parser.add_argument("--interval", type=float, default=1.0, help="Seconds between ticks")
    parser.add_argument("--count", type=int, default=0, help="Ticks to send; 0 = forever")
    args = parser.parse_args(argv)
    sent = 0
    try:
        while args.count == 0 or sent < args.count:
            try:
                report = publish(args.url.rstrip("/"), args.channel, args.event,
                                 {"time": int(time.time())}, token=args.token, secret=args.secret)
                print(f"{report['event']} -> {report['channel']}: {report['listeners']} listener(s)",
                      flush=True)
            except urllib.error.HTTPError as error:
                print(f"refused ({error.code}): {error.read().decode(errors='replace')}",
                      file=sys.stderr)
                return 1
            except OSError as error:
                print(f"server not reachable: {error}", file=sys.stderr)
            sent += 1
            if args.count == 0 or sent < args.count:
                time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
