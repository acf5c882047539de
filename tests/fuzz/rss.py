"""libFuzzer's ``-rss_limit_mb`` for a fuzzer started from this process.

libFuzzer compares its limit with the process's peak RSS (``getrusage``), and Linux carries a process's
peak RSS across fork and exec: a fuzzer started from a test process that already holds 2 GB (a pytest-xdist
worker late in the suite) would report out-of-memory before its first input. The limit given is therefore
this process's own peak plus what the fuzzer itself may use.
"""

from __future__ import annotations

import resource


def rss_limit_flag(own_mb: int = 2048) -> str:
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # ru_maxrss is in KiB on Linux
    return f"-rss_limit_mb={inherited_mb + own_mb}"
