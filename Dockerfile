# syntax=docker/dockerfile:1
#
# teamgate's container image.
#
#   docker build -t teamgate .
#   docker run --rm -p 8080:8080 teamgate     # the demo: every backend an embedded simulator
#
# Two stages: cargo builds in Debian 12 (bookworm) with the Rust toolchain; the final image is
# distroless cc-debian12 (glibc, libgcc, CA certificates, no shell, no package manager), so the
# binary runs on the same glibc it was linked against. It runs as uid 65532 (distroless's
# `nonroot`). Kubernetes: see deploy/kubernetes/ and the README section "Running in a container
# and on Kubernetes".

# Pin a toolchain with --build-arg RUST_VERSION=1.95 (the crate needs 1.85 or newer).
ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Exactly what `cargo build -p teamgate` reads. benches/ is here because Cargo.toml declares
# [[bench]] targets, and cargo refuses a manifest whose declared targets are missing.
COPY Cargo.toml Cargo.lock ./
COPY sim/Cargo.toml sim/
COPY sim/src sim/src/
COPY src src/
COPY benches benches/
COPY deploy/docker/healthcheck.rs deploy/docker/
# BuildKit cache mounts keep the crate registry and the target directory between builds, so a
# source change recompiles teamgate, not its ~200 dependencies. The binary is copied out of the
# cache mount in the same step. Symbols are stripped (14.0 MB -> 10.9 MB).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -p teamgate \
    && install -D -m 0755 target/release/teamgate /out/teamgate
# The HEALTHCHECK's client. The final image has no shell, curl or wget, and `teamgate` has no
# health-check subcommand, so a ~400 KB std-only program (deploy/docker/healthcheck.rs, not part
# of the workspace) makes the request: `teamgate-healthcheck [URL]` exits 0 on a 2xx answer.
RUN rustc --edition 2021 -C opt-level=s -C strip=symbols \
        -o /out/teamgate-healthcheck deploy/docker/healthcheck.rs

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/teamgate /out/teamgate-healthcheck /usr/local/bin/
# The shipped demo configuration and every mapping. Mapping paths are relative to the config
# file, so /etc/teamgate/config.toml reads /etc/teamgate/mappings/*.toml. On Kubernetes a
# ConfigMap is mounted over /etc/teamgate and replaces both.
COPY config.toml /etc/teamgate/config.toml
COPY mappings/*.toml /etc/teamgate/mappings/
# Numeric, so that Kubernetes' runAsNonRoot can verify it (a user name cannot be verified).
USER 65532:65532
EXPOSE 8080
# /healthz is 200 while the process lives (readiness, /readyz, is Kubernetes' business: it
# turns 503 on SIGTERM, and a container that is draining is not unhealthy). If you change the
# port with --listen, pass the new URL: HEALTHCHECK CMD ["/usr/local/bin/teamgate-healthcheck", "http://127.0.0.1:PORT/healthz"].
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/teamgate-healthcheck", "http://127.0.0.1:8080/healthz"]
# In a container the listener must be on 0.0.0.0, or nothing outside the container reaches it.
# SIGTERM drains (see [server] drain_grace_ms and shutdown_timeout_ms): allow
# `docker stop --time 40` or more for the defaults.
ENTRYPOINT ["/usr/local/bin/teamgate"]
CMD ["serve", "--config", "/etc/teamgate/config.toml", "--listen", "0.0.0.0:8080"]
