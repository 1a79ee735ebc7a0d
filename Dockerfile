# MetaNode: one image for every role. Build with `docker build -t metanode .`
# (needs to pull rust and debian images). Without registry access use
# scripts/docker-image.sh, which builds the same runtime stage from a locally
# built binary on a locally made base image.

FROM rust:1.95-bookworm AS builder
RUN apt-get update && apt-get install -y --no-install-recommends clang libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p metanode-node && cp target/release/metanode-node /metanode-node

FROM debian:bookworm-slim AS runtime
# --- runtime stage (scripts/docker-image.sh reuses everything below this line) ---
COPY --from=builder /metanode-node /usr/local/bin/metanode-node
ENV METANODE_DATADIR=/data \
    METANODE_HTTP_ADDR=0.0.0.0 \
    METANODE_WS_ADDR=0.0.0.0 \
    METANODE_METRICS_ADDR=0.0.0.0 \
    METANODE_ROLE=validator
VOLUME ["/data"]
EXPOSE 8545 8546 26656 9001
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/metanode-node"]
