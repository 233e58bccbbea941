# syntax=docker/dockerfile:1
# limited-drop: build the wheels (engine compiled against Debian's SQLite), run them as a non-root user.
#   docker build -t limited-drop .
#   docker run -p 8000:8000 -v dropsvc-data:/data limited-drop     (or: docker compose up, nginx in front)
# The base is pinned by exact tag; pin a digest too (python:3.11.13-slim-bookworm@sha256:...) for
# byte-identical rebuilds.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# -- assets: Alpine.js and the ALTCHA widget from the npm registry at the versions package-lock.json pins
# (the same files as the Makefile's static-assets target) -----------------------------------------
FROM node:20.19.5-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY static/ static/
RUN mkdir -p static/vendor && cp node_modules/alpinejs/dist/cdn.min.js static/vendor/alpine.min.js \
 && cp node_modules/altcha/dist/external/altcha.min.js node_modules/altcha/dist/external/altcha.css static/vendor/ \
 && cp node_modules/altcha/dist/workers/sha.js static/vendor/altcha-sha.js \
 && cp node_modules/altcha/dist/workers/pbkdf2.js static/vendor/altcha-pbkdf2.js

# -- build: every wheel the service needs, ours included ---------------------------------------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libsqlite3-dev libev-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY _engine/ _engine/
COPY dropsvc/ dropsvc/
# the page with Alpine.js, from the assets stage: our wheel carries it (dropsvc/static/), so the service
# serves the same bytes as nginx does from the checkout's static/ (docker-compose.yml mounts it)
COPY --from=assets /src/static/ static/
# the wheels of limited-drop and of its dependencies (bjoern is compiled here, against libev)
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[replication]"

# -- run: the slim base, the two C libraries, the wheels -----------------------------------------
FROM ${PYTHON_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsqlite3-0 libev4 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 dropsvc \
 && useradd --system --uid 10001 --gid dropsvc --home-dir /data --no-create-home --shell /usr/sbin/nologin dropsvc \
 && mkdir /data \
 && chown dropsvc:dropsvc /data
# installed from the build stage's wheels only (no index), which never land in a layer of this image
# (the build stage made exactly the wheels limited-drop[replication] needs, at the versions pip chose there)
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/*.whl

ENV DROPSVC_DB=/data/dropsvc.db \
    DROPSVC_HOST=0.0.0.0 \
    DROPSVC_PORT=8000 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('DROPSVC_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["dropsvc", "serve", "--host", "0.0.0.0"]
