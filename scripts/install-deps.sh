#!/usr/bin/env bash
# Installs what ferry needs from Debian's packages, only when missing.
set -euo pipefail
# libphonenumber is built from Debian's source with RE2 (scripts/libphonenumber.sh): these build and link it.
packages=(libpq-dev libssl-dev libcsv-dev libjemalloc-dev zlib1g-dev postgresql-15 postgresql-client-15 pkg-config groff-base
    cmake protobuf-compiler libprotobuf-dev libre2-dev libabsl-dev libicu-dev libgtest-dev xz-utils patch "$@")
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
    echo "error: no Swift toolchain (expected swift on PATH or /opt/swift/usr/bin/swift)" >&2
    exit 1
fi
