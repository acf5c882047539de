"""Follow a transparency log from its checkpoints and report the entries a person cares about.

``follow``: one poll of a C2SP tlog-tiles log (an ``ailedger serve`` or a static tile mirror): the new
checkpoint is checked against the last one seen (a rollback or split view is a :class:`ForkError`
carrying both signed checkpoints), only the new leaf tiles and entry bundles are read, and every hash
read is folded into the signed root before any entry is used.  ``watch``: what to look for.
``metrics``: the Prometheus metrics of the monitor."""

from ailedger.monitor.follow import ForkError, Monitor, MonitorState
from ailedger.monitor.watch import Watch, match_entry, parse_watch

__all__ = ["ForkError", "Monitor", "MonitorState", "Watch", "match_entry", "parse_watch"]
