# One image for the web, the worker and the scheduler (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH="/opt/venv/bin:$PATH"

# The processes run as this unprivileged user (docker-compose.yml says so too); the code stays root's.
RUN pip install --no-cache-dir uv \
    && groupadd --gid 10001 portal \
    && useradd --create-home --uid 10001 --gid 10001 portal

WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
# collectstatic needs settings that import cleanly; these values exist only for this build step.
RUN DEBUG=false SECRET_KEY=build-only ALLOWED_HOSTS=build ALLOW_LOCAL_AUTH_IN_PRODUCTION=true \
    python manage.py collectstatic --noinput

# The code is readable by everyone and writable by nobody but root, whatever the build machine's umask;
# audit exports (a volume in docker-compose.yml) are written by the unprivileged user.
RUN chmod -R a+rX,go-w /app /opt/venv \
    && mkdir -p /app/var/exports && chown -R portal:portal /app/var

USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--config", "portal/gunicorn.conf.py"]
