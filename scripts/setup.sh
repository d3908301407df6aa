#!/usr/bin/env bash
# Installs what gridcc needs on Debian 12 (as root), then configures and builds.
# Idempotent: packages already present are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEPS=(build-essential cmake pkg-config git curl ca-certificates
      libgdal-dev gdal-bin libproj-dev proj-bin libgeos-dev
      libspatialite-dev libsqlite3-mod-spatialite sqlite3 spatialite-bin
      libglib2.0-dev libwebsockets-dev libwebsockets-evlib-glib
      libjansson-dev libexif-dev libsodium-dev libcmocka-dev libxml2-dev
      libwslay-dev libyajl-dev
      clang libclang-rt-14-dev
      libfreetype-dev libprotobuf-c-dev protobuf-c-compiler fonts-noto-cjk
      libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
      gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x gstreamer1.0-tools ffmpeg
      python3
      chromium)

missing=()
for p in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v node >/dev/null 2>&1; then
  echo "setup: installing nodejs and npm from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# the Node integration tests' packages (ws), exactly as locked
if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
  echo "setup: npm ci in tests/node"
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

# the dashboard (web/): its packages exactly as locked, then the bundle
# (esbuild, offline) that gridcc serves at /
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
  echo "setup: npm ci in web"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd web && npm run --silent build)

BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} ${CMAKE_EXTRA:-} >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
