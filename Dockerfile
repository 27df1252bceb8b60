# One image for every process type (web, worker, beat); the command picks the process.
# Two stages: the build stage installs the dependencies into /opt/venv and collects the static
# files; the runtime stage copies those and the code, and runs as the unprivileged user "pharmacy",
# which can write only to /app/var and the media folders. .dockerignore keeps .env, .venv/,
# db.sqlite3, var/ and .git out of the build context (and so out of the image).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml ./
# The dependencies first, so a code change does not reinstall them.
RUN python - <<'PY' > /tmp/requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
RUN pip install -r /tmp/requirements.txt
COPY . .
# Hashed static files are baked into the image (whitenoise serves them; the proxy may too).
RUN PRODUCTION=1 SECRET_KEY=collectstatic-only-not-used-at-runtime-0123456789abcdefghijklmnop \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 python manage.py collectstatic --noinput \
 && find /app -name __pycache__ -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
# WeasyPrint (the receipt PDF, docs/receipts.md) lays text out with pango; one font family.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin pharmacy \
 && mkdir -p /app/var /data/private /data/media \
 && chown pharmacy:pharmacy /app/var /data/private /data/media
WORKDIR /app
# Code and dependencies belong to root: the shop cannot change its own code.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
USER pharmacy
ENV PRODUCTION=1 \
    PRIVATE_MEDIA_ROOT=/data/private \
    MEDIA_ROOT=/data/media \
    CELERY_BEAT_SCHEDULE_FILE=/app/var/celerybeat-schedule \
    PORT=8000 \
    BIND=0.0.0.0:8000
# Inside a container gunicorn listens on every interface of the container; who can reach it is
# decided by publishing (compose publishes only the proxy). Forwarded headers stay untrusted
# unless FORWARDED_ALLOW_IPS names the proxy (compose: its fixed address).
EXPOSE 8000
# The web check; docker-compose.yml gives worker and beat their own (deploy/healthcheck.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["python", "deploy/healthcheck.py", "web"]
CMD ["gunicorn", "pharmacy.wsgi:application"]
