# giftledger's image: `giftledger serve` on port 8000, configured from the environment (docs/operations.md, "Image").
#
#   docker build -t giftledger .
#   docker run -p 8000:8000 -e GIFTLEDGER_DATABASE_URL=postgresql://... -e GIFTLEDGER_SECRET_KEY=... \
#       -e GIFTLEDGER_SMTP_URL=smtp://... -e GIFTLEDGER_MAIL_FROM=... giftledger [--workers N]
#
# Any Debian-based image with Python 3.11 or later and its `venv` module will do as the base (both stages must use
# the same one: the virtual environment points at its Python).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: compilers (for any dependency without a wheel for this platform) and pip; none of it is shipped.
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/giftledger \
    && /opt/giftledger/bin/pip install --no-cache-dir --upgrade pip
WORKDIR /build
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN /opt/giftledger/bin/pip install --no-cache-dir . \
    && /opt/giftledger/bin/pip uninstall --yes --quiet pip \
    && find /opt/giftledger -name '__pycache__' -prune -exec rm -rf {} + \
    && /opt/giftledger/bin/python -m compileall -q /opt/giftledger/lib

# Final stage: the base image, the virtual environment (without pip), and a user of its own. No compiler.
FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 giftledger \
    && useradd --uid 10001 --gid giftledger --home-dir /var/lib/giftledger --no-create-home \
       --shell /usr/sbin/nologin giftledger \
    && install -d -o giftledger -g giftledger -m 0750 /var/lib/giftledger
COPY --from=build /opt/giftledger /opt/giftledger
ENV PATH=/opt/giftledger/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GIFTLEDGER_ENV=production \
    GIFTLEDGER_DATA_DIR=/var/lib/giftledger
USER giftledger:giftledger
WORKDIR /var/lib/giftledger
EXPOSE 8000
# Ready: the database answers and its schema is at the code's revision (/readyz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
ENTRYPOINT ["giftledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--workers", "2"]
