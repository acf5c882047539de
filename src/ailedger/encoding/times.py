"""Entry times: RFC 3339 UTC text with milliseconds (``2026-01-02T03:04:05.678Z``) and epoch milliseconds.

Pure arithmetic, no clock.  The kernel's writer checks an entry's time against its clock with these
(``Ledger.check_time``) and the governance fold measures periods with them."""

from __future__ import annotations

import calendar
import datetime as _dt

from ailedger.errors import BadInputError

__all__ = ["iso", "time_ms"]


def time_ms(t: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 UTC time like 2026-01-02T03:04:05.678Z."""
    try:
        secs = calendar.timegm((int(t[0:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]),
                                int(t[17:19]), 0, 0, 0))
    except (ValueError, IndexError):
        raise BadInputError(f"bad entry time {t!r}", field="time") from None
    frac = t[20:-1] if len(t) > 20 and t[19] == "." else ""
    ms = int((frac + "000")[:3]) if frac else 0
    return secs * 1000 + ms


def iso(ms: int) -> str:
    """RFC 3339 text of epoch milliseconds (pure arithmetic, no clock)."""
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
