"""``notification_server.py vapid``: show, generate or rotate the server's VAPID key.

Prints the applicationServerKey pages subscribe with. Rotating makes every
stored subscription useless (browsers bound them to the old key), so it keeps
the old key as a backup and says so. It never starts the server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..config import add_options, declared_settings
from . import keys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notification_server.py vapid",
        description="Print the VAPID applicationServerKey (URL-safe base64) pages subscribe with.")
    add_options(parser, declared_settings(["data_dir", "vapid_key"]))
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--generate", action="store_true",
                        help="Create the key if there is none yet (never overwrites).")
    action.add_argument("--rotate", action="store_true",
                        help="Replace the key (the old one is kept as .bak). Every stored "
                             "subscription stops working: pages must subscribe again.")
    return parser


def vapid_command(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    path = Path(args.vapid_key) if args.vapid_key else keys.default_key_path(Path(args.data_dir))
    try:
        if args.rotate:
            vapid, backup = keys.rotate_key(path)
            print(f"New VAPID key in {path}" + (f"; the old key is in {backup}" if backup else ""),
                  file=sys.stderr)
            print("Every stored push subscription was made for the old key: pages must "
                  "subscribe again.", file=sys.stderr)
        elif args.generate:
            vapid = keys.load_key(path) if path.exists() else keys.generate_key(path)
        else:
            if not path.exists():
                print(f"No VAPID key at {path} yet: run with --generate (or start the server "
                      f"once).", file=sys.stderr)
                return 1
            vapid = keys.load_key(path)
    except keys.VapidKeyError as error:
        print(error, file=sys.stderr)
        return 1
    print(keys.application_server_key(vapid))
    return 0
