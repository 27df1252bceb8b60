# One image for every process type (web, worker, beat); the command picks the process.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 1000 pharmacy
WORKDIR /app

COPY pyproject.toml ./
# Install the dependencies first so code changes do not reinstall them.
RUN python - <<'PY' > /tmp/requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
RUN pip install -r /tmp/requirements.txt

COPY . .
# Hashed static files are baked into the image; whitenoise serves them with far-future caching.
RUN PRODUCTION=1 SECRET_KEY=collectstatic-only-not-used-at-runtime-0123456789abcdefghijklmnop \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 python manage.py collectstatic --noinput \
 && mkdir -p /app/var /data/private /data/media \
 && chown -R pharmacy:pharmacy /app/var /data

USER pharmacy
ENV PRODUCTION=1 \
    PRIVATE_MEDIA_ROOT=/data/private \
    MEDIA_ROOT=/data/media \
    PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"
CMD ["gunicorn", "pharmacy.wsgi:application"]
