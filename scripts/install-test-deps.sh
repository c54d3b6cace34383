#!/bin/sh
# Installs every system package zeroimage's test suites use (Debian 12 / bookworm).
#
# Idempotent and non-interactive: when every package is already installed it returns at
# once without touching apt; otherwise it runs `apt-get update` once and installs what is
# missing. Needs root (or passwordless sudo). Works under CI=true with no stdin.
#
# What the tools are for (see tests/src and ../shared/notes/runtime-facts.md):
#   skopeo umoci runc oci-image-tool   inspect, unpack, run and validate OCI images
#   buildah                            multi-platform manifest lists as bases (tests/tests/bases.rs)
#   docker.io containerd               a private Docker 20.10 engine (and its containerd, ctr)
#   podman uidmap                      podman with private storage
#   docker-registry apache2-utils      a private registry; htpasswd for its Basic auth
#   openssl ca-certificates curl       its throw-away TLS CA; HTTP checks against it
#   gcc libc6-dev binutils             the static test program (gcc -static), readelf
#   gcc-aarch64-linux-gnu libc6-dev-arm64-cross   the same program for arm64
#   gcc-arm-linux-gnueabihf libc6-dev-armhf-cross the same program for arm/v7 (multi-platform tests)
#   qemu-user-static binfmt-support    run arm64/arm programs and containers (tests/src/program.rs ensure_qemu)
#   jq pigz tar gzip                   shell-side helpers and the benchmark's baseline
#   zstd time                          zstd -dc checks zstd layers; GNU time measures the benchmark
#   libssl-dev zlib1g-dev python3-venv --bundle-libs test programs: C with OpenSSL and zlib, PyInstaller
#   musl-tools                         the same for a musl program (musl-gcc)
#   zsh fish                           load the completion scripts of `zeroimage completion` (tests/tests/cli.rs)
#   busybox-static                     a real static rootfs for Docker-built bases (tests/tests/interop.rs)
#   g++                                libFuzzer (C++), built by the fuzz targets (scripts/fuzz.sh)
set -eu

PACKAGES="
skopeo umoci runc oci-image-tool buildah
docker.io containerd
podman uidmap
docker-registry apache2-utils
openssl ca-certificates curl
gcc libc6-dev binutils
gcc-aarch64-linux-gnu libc6-dev-arm64-cross
gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
qemu-user-static binfmt-support
jq pigz tar gzip
zstd time
libssl-dev zlib1g-dev python3-venv musl-tools
zsh fish
busybox-static
g++
"

missing=""
for package in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing="$missing $package"
    fi
done

if [ -z "$missing" ]; then
    echo "install-test-deps: all test packages are installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo -n"
else
    echo "install-test-deps: missing:$missing; run this script as root" >&2
    exit 1
fi

echo "install-test-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (e.g. unattended upgrades) instead of failing.
APT_OPTS="-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
# shellcheck disable=SC2086 # word splitting of the option and package lists is intended
$as_root env DEBIAN_FRONTEND=noninteractive apt-get $APT_OPTS update -q </dev/null
# shellcheck disable=SC2086
$as_root env DEBIAN_FRONTEND=noninteractive apt-get $APT_OPTS install -y -q --no-install-recommends $missing </dev/null

# Check the result the same way, so a package apt silently skipped fails here, not in a test.
still=""
for package in $missing; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || still="$still $package"
done
if [ -n "$still" ]; then
    echo "install-test-deps: still missing:$still" >&2
    exit 1
fi
echo "install-test-deps: done"
