# Dream Pixel's container image: the site and its worker, built from the hashed lock only.
#   docker build -t dreampixel .
#   docker run ... dreampixel [web|worker|release]    (the Procfile's processes; web by default)
# Every setting comes from the environment at run time (deploy/production.env.example); the
# image holds no secret. docs/deployment.md, "The container image", has the figures.

# The Python 3.11 base, a Debian image: its python3.11 (with venv) and apt-get are all we need.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the virtual environment and the static files --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3.11 -m venv /opt/venv
# The lock alone first: this layer is rebuilt only when requirements.txt changes, and then
# pip's cache (kept by the builder, never in the image) spares the downloads that did not.
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --quiet --require-hashes --no-deps -r /tmp/requirements.txt
WORKDIR /app
COPY . .
# collectstatic needs no setting: the development defaults build the same manifest production
# reads. The app is compiled to byte-code here (pip did the packages): its files are read-only
# at run time.
RUN /opt/venv/bin/python manage.py collectstatic --noinput -v 0 \
 && /opt/venv/bin/python -m compileall -q -j 0 /app

# --- run --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# nginx runs in front of gunicorn inside the web process (deploy/web.py: slow clients).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin dreampixel
COPY --from=build /opt/venv /opt/venv
# Owned by root and read-only to the site: it writes only to /tmp (nginx's buffers, gunicorn's
# socket); uploads and outputs go to the bucket.
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DREAMPIXEL_ENV=production \
    PORT=8000
WORKDIR /app
USER dreampixel
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=6s --start-period=30s --retries=3 CMD ["python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["/app/deploy/run"]
CMD ["web"]
