# syntax=docker/dockerfile:1
# One image for every seamfill entry point: the coordinator, the worker, the admin CLI, the health
# check and the demo all run as `seamfill <group> ...` (ENTRYPOINT is `seamfill`).
#
#   docker build -t seamfill:local .
#   docker build -t seamfill:local --build-arg SEAMFILL_EXTRAS="--extra ccxt" .   # + ccxt fetcher
#
# Used by compose.yaml and by the Helm chart (helm/seamfill, image.repository).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ARG SEAMFILL_EXTRAS=""
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/seamfill \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src

# Dependencies first, from the lock alone, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
COPY sdk/pyproject.toml sdk/pyproject.toml
COPY sdk/core/pyproject.toml sdk/core/pyproject.toml
COPY sdk/cli/pyproject.toml sdk/cli/pyproject.toml
COPY coordinator/pyproject.toml coordinator/pyproject.toml
COPY worker/pyproject.toml worker/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-install-workspace ${SEAMFILL_EXTRAS}

# Then the workspace's distributions (core, sdk, cli under sdk/; coordinator; worker), installed (not linked) so the runtime stage needs no source tree.
COPY sdk sdk
COPY coordinator coordinator
COPY worker worker
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable ${SEAMFILL_EXTRAS} \
    && /opt/seamfill/bin/seamfill --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="seamfill" \
      org.opencontainers.image.description="Backfill coordinator and worker fleet for market-data history in QuestDB" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid/gid, matching the chart's runAsUser, so runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 seamfill \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin seamfill
COPY --from=build /opt/seamfill /opt/seamfill
ENV PATH=/opt/seamfill/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Coordinator gRPC, coordinator metrics, worker metrics.
EXPOSE 50051 9464 9465
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["seamfill"]
CMD ["--help"]
