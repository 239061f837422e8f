# detector's container image, for config/kubernetes/daemonset.yaml.
#
# The image is made from the release tarball, not from the sources: the tarball is what a
# host install uses too (one build, one artefact), and building it needs the eBPF tool chain
# (nightly Rust, LLVM 22, bpf-linker) that has no place in a build container. From the
# repository root:
#
#   cargo xtask dist                                   # target/dist/detector-<version>-<arch>.tar.gz
#   docker build -f Dockerfile -t detector:0.1.0 target/dist
#
# (podman build / buildah take the same arguments.) The build context is the directory
# holding the tarball; keep one tarball there (two would both be unpacked and the COPY
# below fails rather than pick one).
#
# BASE: any glibc >= 2.34 Debian/Ubuntu image works (the binary is linked against glibc
# and needs nothing else). Users keep the default; an offline builder passes its own, e.g.
# the image `cargo xtask setup` imports from a debootstrap'ed bookworm (tests/image.rs):
#   --build-arg BASE=localhost/detector-base:bookworm
#
# No RUN step: the build executes nothing inside the image, so it needs no network, no
# container runtime for the build and no package manager in the base.
ARG BASE=debian:bookworm-slim

# --- unpack ------------------------------------------------------------------------------
# ADD unpacks a local .tar.gz: /dist/detector-<version>-<arch>/{bin,etc,INSTALL,…}.
FROM ${BASE} AS unpack
ADD detector-*.tar.gz /dist/

# --- runtime -----------------------------------------------------------------------------
FROM ${BASE}

LABEL org.opencontainers.image.title="detector" \
      org.opencontainers.image.description="eBPF runtime detection for container hosts: Elastic rules, ECS alerts" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

COPY --from=unpack /dist/detector-*/bin/detector /usr/local/bin/detector
# detector.toml (documents every key; alerts in /var/log/detector/alerts.ndjson) and the
# rules. The DaemonSet's ConfigMap points rules.paths at /etc/detector/rules.
COPY --from=unpack /dist/detector-*/etc/detector/ /etc/detector/
COPY --from=unpack /dist/detector-*/INSTALL /usr/share/doc/detector/INSTALL

# The daemon runs as root: Kubernetes (and Docker) only grant added capabilities
# (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE) to uid 0 — a non-root user gets no ambient
# capabilities there, and file capabilities are blocked by no_new_privs. The DaemonSet
# drops every other capability, confines the system calls to config/seccomp/detector.json,
# makes the root file system read-only and disallows privilege escalation.
USER 0:0
# The alert file; the DaemonSet mounts the node's /var/log/detector here.
VOLUME ["/var/log/detector"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/detector"]
CMD ["run", "--config", "/etc/detector/detector.toml"]
