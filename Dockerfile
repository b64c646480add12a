# syntax=docker/dockerfile:1
#
# sealgate container image.
#
#   docker build -t sealgate .
#   docker run -d -p 9000:9000 -v "$PWD/sealgate-etc:/etc/sealgate:ro" sealgate
#
# The config and the key files are read from /etc/sealgate, mounted read-only
# (see docs/DEPLOY.md). The config must listen on 0.0.0.0:9000 inside the
# container. Private key files must be mode 0600 and owned by the user the
# container runs as (uid 10001 here, or whatever `docker run --user` says).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what the build needs: Cargo.toml names the bench target, so it comes too.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sealgate \
 && install -m 0755 target/release/sealgate /usr/local/bin/sealgate

FROM debian:bookworm-slim
# ca-certificates: sealgate talks https to the store. Not pinned on purpose:
# the trust store must stay current, and Debian replaces (and drops) the
# previous version whenever it updates it, which would break a pinned build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sealgate \
 && useradd --system --uid 10001 --gid sealgate --home-dir /var/lib/sealgate --shell /usr/sbin/nologin sealgate \
 && install -d -o sealgate -g sealgate -m 0700 /var/lib/sealgate \
 && install -d -m 0755 /etc/sealgate
COPY --from=build /usr/local/bin/sealgate /usr/local/bin/sealgate
COPY config/sealgate.example.toml /usr/share/doc/sealgate/sealgate.example.toml

# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/sealgate
# Used only by a local store or by `serve` without --config (the embedded default).
ENV SEALGATE_DATA_DIR=/var/lib/sealgate
VOLUME ["/var/lib/sealgate"]
EXPOSE 9000

# No /health endpoint yet: any HTTP answer on the S3 port (an unsigned request
# gets 403 AccessDenied) means the server is up. Plain bash, no curl needed.
# A config that serves only https on 9000 needs a different check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9000 && printf 'GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 4 status <&3 && [[ $status == HTTP/1.* ]]"]

ENTRYPOINT ["sealgate"]
CMD ["serve", "--config", "/etc/sealgate/sealgate.toml"]
