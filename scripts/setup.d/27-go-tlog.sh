#!/usr/bin/env bash
# Debian's Go toolchain and golang.org/x/mod (sumdb/tlog, sumdb/note) sources: tests/interop/gotlog/ builds
# a Go verifier that reads the exported tiles over SeaweedFS's S3 HTTP endpoint (offline: GOPATH mode,
# GOPROXY=off, the x/mod sources under /usr/share/gocode).
set -euo pipefail
need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -f /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog/tlog.go ] || need+=(golang-golang-x-mod-dev)
if [ ${#need[@]} = 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "setup: ${need[*]} missing and apt-get unavailable (not root?): the Go tlog interop test will skip" >&2
fi
