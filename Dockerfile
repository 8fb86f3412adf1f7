# drctl container image: the binary plus the client tools its sources and verification call.
#
#   docker build -t drctl:0.1.0 .
#
# PostgreSQL: pg_dump must be at least the server's major version (an older pg_dump refuses a
# newer server), and a newer pg_dump dumps older servers back to 9.2. The image is based on
# Debian 13 (trixie), whose postgresql-client is 17: it backs up and restores servers 9.2 to
# 17. For PostgreSQL 18 servers, base the runtime stage on an image whose client is 18 (see
# docs/operations.md).
# Redis: redis-server (for `verify --level restore` of Redis jobs).
#
# Checked by hadolint in CI (scripts/test.sh); `docker build` is not run there.

FROM rust:1-trixie AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo build --release --locked \
    && strip target/release/drctl

FROM debian:trixie-slim
# Versions follow the Debian release: security updates must flow in on rebuild, so packages
# are not pinned to a minor version here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-client redis-server \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 drctl \
    && useradd --system --uid 10001 --gid drctl --home-dir /var/lib/drctl --create-home drctl
COPY --from=build /src/target/release/drctl /usr/local/bin/drctl
USER 10001:10001
WORKDIR /var/lib/drctl
ENV DRCTL_CONFIG=/etc/drctl/drctl.yaml
EXPOSE 9477
ENTRYPOINT ["/usr/local/bin/drctl"]
CMD ["--help"]
