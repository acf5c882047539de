#!/usr/bin/env bash
# Debian's chromium for the browser tests (Playwright drives it through executable_path).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get install chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "setup: /usr/bin/chromium missing and apt-get unavailable (not root?): browser tests will skip" >&2
fi
