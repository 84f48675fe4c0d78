# edgeproxy: a local CloudFront + Lambda@Edge edge location.
#   docker build -t edgeproxy .
#   docker compose up            # edge on :8080, demo origin on :8081 (see docker-compose.yml)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY edgeproxy ./edgeproxy
RUN pip install .

# The demo config, handlers and site; docker-compose.yml mounts ./config over it.
COPY config /config

# 8080: HTTP listener, 8443: HTTPS listener (when edge.listeners.https_port is set).
EXPOSE 8080 8443

# The image runs any edgeproxy subcommand; with no arguments it serves /config.
# Handlers are plain files under /config, so edits on the host take effect without a rebuild.
ENTRYPOINT ["edgeproxy"]
CMD ["serve", "--config", "/config/distribution.yaml", "--host", "0.0.0.0"]
