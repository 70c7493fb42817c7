# cuecast container image.
#   docker build -t cuecast .
#   docker run -p 1935:1935 -p 1936:1936 -p 8080:8080 -p 8890:8890/udp -p 4433:4433/udp -v cuecast-data:/var/lib/cuecast cuecast
# Package lists are kept in step with .ci/setup (DEB_BUILD / DEB_RUNTIME).

# The web pages (web/): npm ci from the committed lock file, then vite's build into /web/dist.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

FROM rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
      libsrt-gnutls-dev libswscale-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY config ./config
COPY pipelines ./pipelines
RUN cargo build --release --locked --bin cuecast

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
      gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools ca-certificates \
      libsrt1.5-gnutls libswscale6 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/cuecast --create-home cuecast
COPY --from=builder /src/target/release/cuecast /usr/local/bin/cuecast
COPY config/cuecast.toml /etc/cuecast/cuecast.toml
COPY pipelines /usr/share/cuecast/pipelines
COPY --from=web /web/dist /usr/share/cuecast/web
ENV CUECAST_SERVER_DATA_DIR=/var/lib/cuecast \
    CUECAST_MEDIA_PIPELINES_DIR=/usr/share/cuecast/pipelines \
    CUECAST_WEB_DIR=/usr/share/cuecast/web \
    RUST_LOG=info
USER cuecast
WORKDIR /var/lib/cuecast
VOLUME ["/var/lib/cuecast"]
# RTMP, RTMPS, HTTP (HLS origin + API), SRT, chat (QUIC)
EXPOSE 1935/tcp 1936/tcp 8080/tcp 8890/udp 4433/udp
HEALTHCHECK --interval=15s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["/usr/local/bin/cuecast"]
CMD ["serve", "--config", "/etc/cuecast/cuecast.toml"]
