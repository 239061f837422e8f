# syntax=docker/dockerfile:1
#
# detector's container image, for config/kubernetes/daemonset.yaml.
#   docker build -t detector:0.1.0 .
#
# Stage 1 builds the release tarball with `cargo xtask dist` (the same layout as a host
# install); stage 2 is a small Debian image holding only the binary, the installed
# configuration and the rules.

# --- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build

# The eBPF programs need nightly with rust-src and bpf-linker built against LLVM 22
# (Debian's llvm-22-dev from bookworm-security; /usr/bin/llvm-config is LLVM 14: unusable).
RUN apt-get update \
 && apt-get install -y --no-install-recommends llvm-22-dev libpolly-22-dev \
 && rm -rf /var/lib/apt/lists/*
RUN rustup toolchain install nightly --profile minimal --component rust-src
# bpf-linker's default feature wants LLVM 23; pin the feature to the LLVM we have.
RUN PATH=/usr/lib/llvm-22/bin:$PATH LLVM_SYS_221_PREFIX=/usr/lib/llvm-22 \
    cargo install --locked bpf-linker --version "~0.13" --no-default-features --features llvm-22

WORKDIR /src
COPY . .
# Builds the release binary (with the eBPF object embedded) and stages
# target/dist/detector-<version>-<arch>.tar.gz; unpack it for the next stage.
RUN cargo xtask dist \
 && mkdir /staging \
 && tar -xzf target/dist/detector-*.tar.gz -C /staging --strip-components=1

# --- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="detector" \
      org.opencontainers.image.description="eBPF runtime detection for container hosts: Elastic rules, ECS alerts" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

COPY --from=build /staging/bin/detector /usr/local/bin/detector
# detector.toml (alerts in /var/log/detector/alerts.ndjson) and rules/.
COPY --from=build /staging/etc/detector/ /etc/detector/
COPY --from=build /staging/INSTALL /usr/share/doc/detector/INSTALL
RUN mkdir -p -m 0750 /var/log/detector

# The daemon runs as root: Kubernetes (and Docker) only grant added capabilities
# (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE) to uid 0 — a non-root user gets no ambient
# capabilities there, and file capabilities are blocked by no_new_privs. The DaemonSet
# drops every other capability, makes the root file system read-only and disallows
# privilege escalation.
USER 0:0
VOLUME ["/var/log/detector"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/detector"]
CMD ["run", "--config", "/etc/detector/detector.toml"]
