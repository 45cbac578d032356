# Browser Notification Service: one node in a container.
#   docker build -t notification-server .
#   docker run -p 8080:8080 -e NOTIFY_PUBLISH_TOKEN=<token> notification-server
# compose.yaml runs two of these on Redis and PostgreSQL behind nginx.
FROM python:3.11-slim

# The server never needs root: a system user of its own owns the data and logs.
RUN groupadd --system notify \
 && useradd --system --gid notify --home-dir /var/lib/notification-server \
            --shell /usr/sbin/nologin notify \
 && mkdir -p /var/lib/notification-server /var/log/notification-server \
 && chown notify:notify /var/lib/notification-server /var/log/notification-server

COPY pyproject.toml README.md requirements.txt /tmp/src/
COPY notification_service /tmp/src/notification_service
RUN pip install --no-cache-dir /tmp/src && rm -rf /tmp/src

# Every flag has a NOTIFY_* variable; these are the container's defaults.
ENV NOTIFY_HOST=0.0.0.0 \
    NOTIFY_PORT=8080 \
    NOTIFY_DATA_DIR=/var/lib/notification-server \
    NOTIFY_LOGFILE=/var/log/notification-server/notification_server.log \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/notification-server", "/var/log/notification-server"]
USER notify
EXPOSE 8080
# slim has no curl: Python asks /health (under --base-path when one is set).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('NOTIFY_PORT', '8080') + os.environ.get('NOTIFY_BASE_PATH', '').rstrip('/') + '/health', timeout=4)"]
CMD ["notification-server"]
