#!/usr/bin/env bash
# Provides a real kube-apiserver for the tests: no package registry ships one, so it is built
# once from Debian's `kubernetes` source package with Debian's Go, and cached outside the
# repository (about 7 minutes on 2 cores the first time). etcd comes from Debian's etcd-server.
# The source's vendored reflect2 1.0.1 predates Go 1.18's map internals: the apiserver crashes
# ("fatal error: fault" in mapiterinit) on the first custom resource it encodes, so Debian's
# reflect2 1.0.2 replaces it before the build.
# Prints the binary's path. Needs root for apt-get (as on the project's machines and CI).
set -euo pipefail
cache=${EGRESS_SCOUT_CACHE:-${HOME:-/root}/.cache/egress-scout}
bin="$cache/kube-apiserver-reflect2-1.0.2"
if [ -x "$bin" ] && command -v etcd >/dev/null; then
  echo "$bin"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Source packages come from the same archive as the binary ones: copy the entry, as deb-src.
sources=/etc/apt/sources.list.d/debian.sources
src_entry=/etc/apt/sources.list.d/egress-scout-src.sources
if [ -f "$sources" ] && [ ! -f "$src_entry" ]; then
  sed 's/^Types: deb$/Types: deb-src/' "$sources" > "$src_entry"
fi
apt-get update -qq >&2
apt-get install -y -qq golang-go etcd-server dpkg-dev rsync make \
  golang-github-modern-go-reflect2-dev >&2
if [ ! -x "$bin" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq kubernetes >&2)
  src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
  reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  rsync -a --delete --exclude '*_test.go' "$reflect2/" "$src/vendor/github.com/modern-go/reflect2/"
  # The Makefile sets up the generated code and GOPATH; a plain `go build -mod=vendor` fails.
  make -C "$src" WHAT=cmd/kube-apiserver >&2
  mkdir -p "$cache"
  cp "$src/_output/bin/kube-apiserver" "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
