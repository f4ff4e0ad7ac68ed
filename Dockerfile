# podium node image. Used by docker-compose.yml; configured entirely through PODIUM_* variables.
#
# Two stages so that whatever sits in the build context (a local .venv, .git, test artifacts) never
# reaches the runtime image: only the installed virtualenv and the example programmes are copied over.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install .


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 podium \
    && useradd --system --uid 10001 --gid podium --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin podium

COPY --from=build /opt/venv /opt/venv
# PODIUM_PROGRAMME points into this directory (e.g. /app/config/programmes/summit.toml).
COPY --from=build /src/config/programmes /app/config/programmes

WORKDIR /app
USER podium:podium

EXPOSE 8080
CMD ["podium", "serve"]
