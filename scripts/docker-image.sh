#!/usr/bin/env bash
# scripts/docker-image.sh [TAG] — build the FROM-scratch image around a
# statically linked shoal binary (default tag shoal:local), without any
# base image (deploy/Dockerfile.scratch). deploy/Dockerfile does the same
# in two stages for machines that can pull golang images.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-shoal:local}
CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$CTX/shoal" ./cmd/shoal
cp deploy/Dockerfile.scratch "$CTX/Dockerfile"
docker build -q -t "$TAG" "$CTX"
echo "built $TAG"
