#!/usr/bin/env bash
# Debian's nginx: serves the static tile mirror in its test and in bench/http_bench.py; wrk for the
# closed-loop read benchmark.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} = 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "setup: ${need[*]} missing and apt-get unavailable (not root?): the nginx mirror test will skip" >&2
fi
