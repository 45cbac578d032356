#!/usr/bin/env python3
"""Start the Browser Notification Service: ``py notification_server.py -h`` lists the flags."""

import sys

from notification_service.cli import main

if __name__ == "__main__":
    sys.exit(main())
