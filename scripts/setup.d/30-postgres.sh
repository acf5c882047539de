#!/usr/bin/env bash
# The PostgreSQL backend's tests talk to the local server (127.0.0.1:5432, database test).
# Start the machine's cluster if it is installed but stopped; otherwise those tests skip, saying why.
set -uo pipefail
if command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 -q; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
  done
fi
exit 0
