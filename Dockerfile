# A slim image that runs `forumlive serve` as a non-root user.
# It installs with scripts/install.sh, the same script `make demo` and `make test` run, so the steps are tested.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FORUMLIVE_DATA_DIR=/var/lib/forumlive \
    FORUMLIVE_HOST=0.0.0.0 \
    FORUMLIVE_PORT=8000

# Where torch comes from when no CPU wheel is at hand (see scripts/install.sh), e.g. PyTorch's CPU-only index.
ARG TORCH_INDEX_URL=
WORKDIR /opt/forumlive-src
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY server ./server
COPY realtime ./realtime
COPY captioning ./captioning
COPY web ./web

RUN VENV=/opt/forumlive EDITABLE=0 sh scripts/install.sh \
    && useradd --system --create-home --home-dir /var/lib/forumlive forumlive

USER forumlive
EXPOSE 8000
VOLUME ["/var/lib/forumlive"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/forumlive/bin/python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

CMD ["/opt/forumlive/bin/forumlive", "serve"]
