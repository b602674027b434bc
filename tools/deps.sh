#!/bin/bash
# Installs every build and test dependency (Debian 12). Idempotent and quiet when done.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config file git
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libabsl-dev
  libseccomp-dev libcap-ng-dev libnl-3-dev libnl-route-3-dev
  catch2 clang clang-format libclang-rt-14-dev
  busybox-static cpio gzip xz-utils zstd e2fsprogs erofs-utils
  qemu-system-x86 qemu-utils
  linux-source-6.1 bc flex bison libelf-dev libssl-dev dwarves
  crun
  golang-go golang-github-containerd-ttrpc-dev
  python3 python3-grpcio python3-protobuf
  socat jq gnuplot-nox
  python3-matplotlib linux-perf valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
