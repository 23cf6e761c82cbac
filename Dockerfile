# syntax=docker/dockerfile:1
#
# The ferrum-issuer image.
#
#   docker build -t ferrum-issuer:0.1.0 .
#
# Built with cargo on Debian 12, run on distroless/cc: glibc, libgcc, CA certificates and
# nothing else (no shell, no package manager). The binary links glibc dynamically; aws-lc and
# OpenSSL 3 (the `vendored` build of the openssl crate: every issued certificate is validated
# with OpenSSL's path validation) are compiled from their bundled sources and linked
# statically, so the image needs no libssl. Builder and runtime share a glibc: both are
# Debian 12 "bookworm". A static musl build would allow distroless/static, but aws-lc and
# OpenSSL on musl are more things to cross-compile for no gain in what the image can do.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
# OpenSSL's own build (openssl-src) needs make and perl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make perl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Build AWS-LC from its bundled sources with the C compiler, not against a system library.
ENV AWS_LC_SYS_USE_SYSTEM=0
# The whole workspace: cargo loads every member, even to build one package.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p ferrum-issuer --bin ferrum-issuer \
 && install -D -m 0755 target/release/ferrum-issuer /out/ferrum-issuer

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="ferrum-issuer" \
      org.opencontainers.image.description="Ferrum, a cert-manager external issuer" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ferrum-issuer /ferrum-issuer
# The chart's pod security context runs as this UID too (restricted Pod Security profile).
USER 65532:65532
ENTRYPOINT ["/ferrum-issuer"]
