#!/usr/bin/env bash
# Builds the libphonenumber ferry links: Debian 12's own source package of it (the release Debian ships,
# with Debian's patches), compiled with the library's RE2 regular-expression engine instead of ICU's.
# Debian's binary package uses ICU, whose matcher the library builds afresh for every pattern it runs:
# that was most of the transform's CPU (docs/performance.md). Same library, same metadata, same answers:
# the build compiles the same source with ICU's engine too and keeps the RE2 build only if both answer
# every input of the test corpora alike (scripts/libphonenumber-verdicts.cpp).
#   scripts/libphonenumber.sh [DIR]   builds into DIR (default .deps/libphonenumber), only when DIR does
#                                     not already hold this script's build; Package.swift links from there
# The source comes through apt from the machine's own Debian mirror (its signed index checks every
# file), with a private apt configuration: the machine's apt settings are left as they are.
set -euo pipefail

ferry_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$ferry_root"
destination=$(realpath -m "${1:-.deps/libphonenumber}")
package_version=8.12.57+ds-3
upstream_dir=libphonenumber-8.12.57

# A build is kept while the version, this script, its patch and its verdicts program are the same.
key="$package_version $(cat scripts/libphonenumber.sh scripts/libphonenumber-re2.patch scripts/libphonenumber-verdicts.cpp |
    sha256sum | cut -c1-16)"
if [ -f "$destination/BUILT" ] && [ "$(cat "$destination/BUILT")" = "$key" ]; then
    exit 0
fi
echo "building libphonenumber $package_version with RE2 into $destination"

work=$(mktemp -d /tmp/ferry-libphonenumber.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The Debian mirror apt already uses for bookworm (deb822 or one-line sources), else deb.debian.org.
mirror=$(grep -hoE '^URIs: *https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 |
    sed -E 's/^URIs: *//' || true)
if [ -z "$mirror" ]; then
    mirror=$(grep -hoE '^deb +https?://[^ ]+/debian/? +bookworm ' /etc/apt/sources.list 2>/dev/null | head -1 |
        awk '{print $2}' || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/source"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" >"$work/apt/sources.list"
apt_options=(
    -o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=$work/apt/none"
    -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o "Debug::NoLocking=true"
)
# apt drops to its own user to download; the temporary folder is root's.
[ "$(id -u)" != 0 ] || apt_options+=(-o "APT::Sandbox::User=root")
apt-get "${apt_options[@]}" update -qq
(cd "$work/source" && apt-get "${apt_options[@]}" source --download-only -qq "libphonenumber=$package_version" >/dev/null) || {
    echo "error: no source package libphonenumber $package_version from $mirror (bookworm main): ferry builds that release" >&2
    exit 1
}

cd "$work/source"
tar -xf libphonenumber_*.orig.tar.xz
tar -xf "libphonenumber_$package_version.debian.tar.xz" -C "$upstream_dir"
cd "$upstream_dir"
grep -v '^#' debian/patches/series | while read -r patch_name; do
    [ -z "$patch_name" ] || patch -p1 -s <"debian/patches/$patch_name"
done
patch -p1 -s <"$ferry_root/scripts/libphonenumber-re2.patch"

# The swift toolchain's clang++ compiles ferry's shim against these headers; the library gets the same
# compiler. The library and its headers agree on the definitions below, which the shim reads first.
compiler=$(dirname "$(command -v swift || echo /opt/swift/usr/bin/swift)")/clang++
[ -x "$compiler" ] || compiler=c++

# build_library DIR CMAKE_OPTION...: the static library alone (no geocoder, no tests).
build_library() {
    local dir=$1
    shift
    mkdir "$dir"
    (cd "$dir" && cmake ../cpp -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_CXX_STANDARD=17 \
        -DCMAKE_CXX_FLAGS=-Wno-error -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DUSE_BOOST=OFF -DBUILD_GEOCODER=OFF \
        -DREGENERATE_METADATA=OFF "$@" >cmake.log 2>&1 || { cat cmake.log >&2; exit 1; })
    make -C "$dir" -j"$(nproc)" phonenumber >"$dir/make.log" 2>&1 || { tail -40 "$dir/make.log" >&2; exit 1; }
}

# defines DIR: the preprocessor definitions the library in DIR was compiled with.
defines() {
    sed -n 's/^CXX_DEFINES = //p' "$1/CMakeFiles/phonenumber.dir/flags.make"
}

# verdicts DIR: what the library in DIR answers for every input (scripts/libphonenumber-verdicts.cpp).
verdicts() {
    # shellcheck disable=SC2046
    "$compiler" -O1 -std=c++17 $(defines "$1") -Icpp/src "$ferry_root/scripts/libphonenumber-verdicts.cpp" \
        "$1/libphonenumber.a" -lre2 -labsl_hash -labsl_raw_hash_set -labsl_strings -labsl_throw_delegate \
        -lprotobuf -licui18n -licuuc -lstdc++ -o "$1/verdicts"
    "$1/verdicts" <inputs.tsv
}

build_library build-re2 -DUSE_RE2=ON -DUSE_ICU_REGEXP=OFF
# The same source with ICU's regular expressions, as Debian builds it: the RE2 build is kept only if it
# answers every input as this one does. The inputs: the test corpora, each value in its own region and
# in six others.
build_library build-icu -DUSE_RE2=OFF -DUSE_ICU_REGEXP=ON
{
    for corpus in "$ferry_root"/../shared/corpora/phones/{example_numbers,messy_phones.dev}.tsv; do
        [ ! -f "$corpus" ] || cut -f1,2 "$corpus"
    done
    for corpus in "$ferry_root"/Tests/Corpus/phones/*.tsv; do
        tail -n +2 "$corpus" | awk -F'\t' '{ print $2 "\t" $1 }'
    done
} >inputs.tsv
[ -s inputs.tsv ] || { echo "error: no corpus inputs to compare the two builds on (Tests/Corpus/phones)" >&2; exit 1; }
verdicts build-re2 >verdicts-re2.tsv
verdicts build-icu >verdicts-icu.tsv
if ! cmp -s verdicts-re2.tsv verdicts-icu.tsv; then
    echo "error: libphonenumber with RE2 answers differently from the same source with ICU's regular expressions:" >&2
    diff verdicts-icu.tsv verdicts-re2.tsv | head -20 >&2
    exit 1
fi
echo "libphonenumber with RE2 and with ICU: the same answers for $(wc -l <verdicts-re2.tsv) parses of $(wc -l <inputs.tsv) inputs"

staging="$destination.partial"
rm -rf "$staging"
mkdir -p "$staging/lib" "$staging/include"
cp build-re2/libphonenumber.a "$staging/lib/libphonenumber-re2.a"
(cd cpp/src && find phonenumbers -name '*.h' -exec cp --parents {} "$staging/include/" \;)
{
    echo "// Written by scripts/libphonenumber.sh: how the library in ../lib was built."
    echo "#define FERRY_LIBPHONENUMBER_VERSION \"$package_version (RE2)\""
    for define in $(defines build-re2); do
        define=${define#-D}
        case $define in
            *=*) echo "#define ${define%%=*} ${define#*=}" ;;
            *) echo "#define $define 1" ;;
        esac
    done
} >"$staging/include/ferry_libphonenumber_build.h"
echo "$key" >"$staging/BUILT"
rm -rf "$destination"
mkdir -p "$(dirname "$destination")"
mv "$staging" "$destination"
echo "libphonenumber $package_version (RE2) built in $destination"
