#!/usr/bin/env bash
# Builds the keyless container image (Containerfile) with podman:
#   deploy/image/build.sh [TAG]      (default keyless:$(cat VERSION))
# Stages the build context in build/image: a static keyless (CGO_ENABLED=0,
# version stamped), the host's CA bundle, passwd/group for the non-root
# user, and the built web component (make wasm first). Nothing is pulled:
# the image is FROM scratch.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
VERSION=$(cat VERSION)
REVISION=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
TAG=${1:-keyless:$VERSION}
CTX=build/image
: "${CONTAINERS_CONF:=$PWD/.ci/containers.conf}"
export CONTAINERS_CONF

for f in web-component/keyless.wasm web-component/wasm_exec.js; do
  [ -f "$f" ] || { echo "image: $f missing; run make wasm first" >&2; exit 1; }
done
CA=/etc/ssl/certs/ca-certificates.crt
[ -f "$CA" ] || { echo "image: $CA missing (apt-get install ca-certificates)" >&2; exit 1; }

rm -rf "$CTX"
mkdir -p "$CTX/web-component" "$CTX/data"
CGO_ENABLED=0 GOOS=linux $GO build -trimpath \
  -ldflags="-s -w -X main.version=$VERSION -X main.revision=$REVISION" \
  -o "$CTX/keyless" ./sidecar/cmd/keyless
cp deploy/image/passwd deploy/image/group "$CA" "$CTX/"
cp web-component/keyless.js web-component/keyless-wasm.d.ts web-component/keyless.wasm \
   web-component/wasm_exec.js "$CTX/web-component/"
podman build --quiet -f Containerfile --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
  -t "$TAG" "$CTX"
echo "image: built $TAG"
