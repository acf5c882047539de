#!/usr/bin/env bash
# pango for WeasyPrint (`ailedger report ... --pdf`, tests/reports): HTML to PDF without a browser.
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0'; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: apt-get install libpango-1.0-0 libpangoft2-1.0-0 (WeasyPrint)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null
else
  echo "setup: pango missing and apt-get unavailable (not root?): report PDFs (--pdf) and their test will fail" >&2
fi
