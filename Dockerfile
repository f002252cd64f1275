# syntax=docker/dockerfile:1
# toqdash production image: gunicorn serving toqdash.wsgi, static files collected at build time and
# served by whitenoise. The same image runs the Celery worker and beat (see docker-compose.yml).
#
# Both stages use the same base image so the venv's interpreter path and the Debian release (the
# libmariadb SONAME mysqlclient links against) match.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: compile the wheels that need headers (mysqlclient) into a venv ----------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Build-only dependencies: they never reach the runtime stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        default-libmysqlclient-dev \
        gcc \
        pkg-config \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /build
# Requirements first so the dependency layer is cached across source changes.
COPY requirements.txt requirements-mysql.txt ./
RUN pip install --no-cache-dir -r requirements.txt -r requirements-mysql.txt

# --- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# libmariadb3 is the shared library mysqlclient was linked against (Debian's
# default-libmysqlclient-dev is MariaDB's Connector/C); nothing else is needed at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 toqdash \
    && useradd --system --uid 10001 --gid toqdash --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin toqdash

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=toqdash.settings.base \
    STATIC_ROOT=/app/staticfiles \
    STATICFILES_BACKEND=whitenoise.storage.CompressedManifestStaticFilesStorage

WORKDIR /app
# The code stays owned by root (the app user cannot rewrite it); only var/ is writable, for
# beat's schedule file.
COPY . .
# collectstatic needs no secret and no database: settings fall back to their local defaults here,
# and the real values come from the container's environment at run time. The manifest written
# now is the one the runtime STATICFILES_BACKEND (same ENV) reads.
RUN python manage.py collectstatic --noinput \
    && mkdir -p /app/var \
    && chown toqdash:toqdash /app/var

# Numeric, so orchestrators that enforce runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001

EXPOSE 8000

# /healthz is 200 when the database and the broker are reachable. The Host header is the first
# ALLOWED_HOSTS entry, so the probe passes host validation with production's ALLOWED_HOSTS;
# /healthz is exempt from SECURE_SSL_REDIRECT (settings), so plain HTTP is fine here.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as r; h = (os.environ.get('ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; sys.exit(0 if r.urlopen(r.Request('http://127.0.0.1:8000/healthz', headers={'Host': h}), timeout=8).status == 200 else 1)"]

# Worker count: gunicorn reads WEB_CONCURRENCY; extra flags: GUNICORN_CMD_ARGS.
CMD ["gunicorn", "toqdash.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--error-logfile", "-"]
