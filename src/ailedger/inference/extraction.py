"""Model extraction: a PRADA-style detector in the gateway, signed alarms, the budget rule, output hardening.

**Detector** (Juuti et al., "PRADA: Protecting against DNN Model Stealing Attacks", EuroS&P 2019, Alg. 1):
per identity and per predicted class ``c`` the detector keeps a *growing set* ``G_c`` of that identity's
earlier queries.  For a new query ``x`` answered ``c`` it takes ``d = min ||x - y||_2`` over ``y`` in
``G_c`` and adds ``d`` to the identity's distance sample ``D``; when ``d`` exceeds the class threshold
``T_c`` the query joins ``G_c`` and ``T_c = max(T_c, mean(DG_c) - std(DG_c))`` (``DG_c``: the distances
that admitted members).  Once ``D`` holds ``min_samples`` distances, the Shapiro-Wilk statistic ``W`` of
``D`` (its last ``window`` values, after dropping values more than 3 standard deviations from the mean)
is compared to ``delta``: natural queries give distances close to normal, synthetic ones (small steps
from a few seeds, uniform noise) do not, and ``W < delta`` is an alarm.

**Alarm**: a signed ``inference.extraction-alarm`` entry (:data:`ALARM_TYPE`) by the gateway's operator
key, carrying the evidence (every distance tested, in milli-units, and ``W``, so anyone can recompute the
test: :func:`check_alarm`).  After an alarm the identity's detector starts afresh.

**The budget rule** (:func:`standing`, the one function every reader of budgets calls; docs/authority.md):
only alarms signed by the operator key of the gateway that reads them, whose evidence holds, count, each for
:data:`ALARM_WINDOW_S` seconds from its signed time.  With ``n`` alarms in force an identity's rate limit
and daily quota are multiplied by ``SHRINK ** n`` (a key without a daily quota gets
``UNLIMITED_CAP * SHRINK ** n``); with ``n >= SUSPEND_AFTER`` every key of the identity is suspended (403
``identity_suspended``) until the alarms age out.

**Output hardening** (:class:`Hardening`): answer the top-1 label only (drop the probabilities) and/or
round the probabilities to ``decimals`` places.

The gateway calls an :class:`ExtractionGuard` through two hooks (``admit`` before the budget is charged,
``observe`` after the model answered); it never imports this module.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ailedger.encoding.times import time_ms
from ailedger.errors import BadInputError, SignatureError, VerificationError

__all__ = [
    "ALARM_TYPE",
    "ALARM_WINDOW_S",
    "SHRINK",
    "SUSPEND_AFTER",
    "UNLIMITED_CAP",
    "Alarm",
    "DetectorConfig",
    "ExtractionGuard",
    "Hardening",
    "PradaDetector",
    "Standing",
    "alarms",
    "check_alarm",
    "ignored_alarms",
    "rule",
    "shapiro_w",
    "standing",
]

ALARM_TYPE = "inference.extraction-alarm"
ALARM_WINDOW_S = 86400        # an alarm is in force for a day from its signed time
SHRINK = 0.5                  # each alarm in force halves the rate and the daily quota
SUSPEND_AFTER = 2             # this many alarms in force suspend every key of the identity
UNLIMITED_CAP = 1000          # the daily quota an alarm imposes on a key that had none (then shrunk)


# -- the detector -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DetectorConfig:
    delta: float = 0.93        # alarm when W < delta (digits: honest replays >= 0.946, attacks <= 0.86)
    min_samples: int = 100     # distances needed before the first test
    window: int = 1000         # the last this many distances are tested
    max_growing: int = 4000    # growing-set members kept per identity (all classes); then no more are added

    def __post_init__(self) -> None:
        if not 0 < self.delta < 1:
            raise BadInputError("delta must be between 0 and 1", field="delta", found=self.delta)
        if self.min_samples < 20:
            raise BadInputError("min_samples must be at least 20 (Shapiro-Wilk needs a sample)",
                                field="min_samples", found=self.min_samples)
        if self.window < self.min_samples or self.window > 5000:
            raise BadInputError("window must be between min_samples and 5000 (Shapiro-Wilk's p-value range)",
                                field="window", found=self.window)

    def to_dict(self) -> dict[str, Any]:
        return {"delta": self.delta, "min_samples": self.min_samples, "window": self.window,
                "max_growing": self.max_growing}


def shapiro_w(sample: list[float]) -> tuple[float, float]:
    """(W, p) of the Shapiro-Wilk test on ``sample`` after dropping values beyond 3 standard deviations."""
    import numpy as np
    from scipy.stats import shapiro

    d = np.asarray(sample, dtype=np.float64)
    mu, sd = float(d.mean()), float(d.std())
    if sd > 0:
        d = d[np.abs(d - mu) <= 3 * sd]
    if len(d) < 3 or float(d.std()) == 0.0:
        return 0.0, 0.0  # all distances equal (a query repeated, or points on a lattice): not natural
    w, p = shapiro(d)
    return float(w), float(p)


@dataclass
class _Identity:
    growing: dict[Any, Any] = field(default_factory=dict)   # class -> 2-D array of members
    dg: dict[Any, list[float]] = field(default_factory=dict)
    thr: dict[Any, float] = field(default_factory=dict)
    dists: list[float] = field(default_factory=list)
    members: int = 0
    queries: int = 0


@dataclass(frozen=True)
class Detection:
    identity: str
    queries: int
    w: float
    p: float
    distances: tuple[float, ...]


class PradaDetector:
    """PRADA's detector, per identity (see the module docstring).  ``observe`` returns a
    :class:`Detection` when the identity's distances fail the normality test, else None."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.state: dict[str, _Identity] = {}
        self.last_w: dict[str, float] = {}

    def reset(self, identity: str) -> None:
        self.state.pop(identity, None)

    def observe(self, identity: str, x: Any, label: Any) -> Detection | None:
        import numpy as np

        cfg = self.config
        st = self.state.setdefault(identity, _Identity())
        v = np.asarray(x, dtype=np.float64).ravel()
        st.queries += 1
        g = st.growing.get(label)
        if g is None:
            st.growing[label] = v[None, :]
            st.dg[label] = []
            st.thr[label] = 0.0
            st.members += 1
            return None
        if g.shape[1] != v.shape[0]:
            raise BadInputError(f"query has {v.shape[0]} features; this identity's earlier queries had {g.shape[1]}",
                                field="features")
        d = float(np.sqrt(((g - v) ** 2).sum(axis=1)).min())
        st.dists.append(d)
        if len(st.dists) > cfg.window:
            del st.dists[: len(st.dists) - cfg.window]
        if d > st.thr[label] and st.members < cfg.max_growing:
            st.growing[label] = np.vstack([g, v[None, :]])
            dg = st.dg[label]
            dg.append(d)
            st.thr[label] = max(st.thr[label], float(np.mean(dg) - np.std(dg)))
            st.members += 1
        if len(st.dists) < cfg.min_samples:
            return None
        w, p = shapiro_w(st.dists)
        self.last_w[identity] = w
        if w < cfg.delta:
            return Detection(identity, st.queries, w, p, tuple(st.dists))
        return None


# -- alarms and the budget rule ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Alarm:
    index: int
    identity: str
    signer: str
    time_ms: int
    w: float


def _alarm_of(index: int, e: Any) -> Alarm | None:
    b = e.body
    ident, w = b.get("identity"), b.get("w")
    if e.type != ALARM_TYPE or not isinstance(ident, str) or not isinstance(w, (int, float)):
        return None
    try:
        t = time_ms(e.time)
    except BadInputError:
        return None
    return Alarm(index, ident, e.signer, t, float(w))


class _AlarmCache:
    """Every alarm entry of one ledger, folded incrementally (signatures checked once each)."""

    def __init__(self) -> None:
        self.after = -1
        self.alarms: list[Alarm] = []
        self.ignored: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def refresh(self, ledger: Any) -> list[Alarm]:
        with self.lock:
            while True:
                idxs = ledger.store.find(f"type:{ALARM_TYPE}", self.after, 1000)
                for i in idxs:
                    e = ledger.entry(i)
                    try:
                        e.verify()
                    except SignatureError:
                        self.ignored.append((i, "signature does not verify"))
                        continue
                    a = _alarm_of(i, e)
                    if a is None:
                        self.ignored.append((i, "malformed alarm (body.identity, body.w, time)"))
                        continue
                    try:
                        check_alarm(e)
                    except (BadInputError, VerificationError) as exc:
                        self.ignored.append((i, f"its evidence does not hold: {exc.message}"))
                        continue
                    self.alarms.append(a)
                if idxs:
                    self.after = idxs[-1]
                if len(idxs) < 1000:
                    return list(self.alarms)


_caches: dict[str, _AlarmCache] = {}
_caches_lock = threading.Lock()


def alarms(ledger: Any) -> list[Alarm]:
    """Every alarm entry of the ledger whose signature and evidence hold (:func:`check_alarm`), in log order,
    whoever signed it: :func:`rule` keeps the gateway operator's."""
    return _cache_of(ledger).refresh(ledger)


def ignored_alarms(ledger: Any) -> list[tuple[int, str]]:
    """(index, why) of every alarm entry with no effect anywhere (bad signature, malformed, evidence fails)."""
    cache = _cache_of(ledger)
    cache.refresh(ledger)
    return list(cache.ignored)


def _cache_of(ledger: Any) -> _AlarmCache:
    key = str(ledger.path)
    with _caches_lock:
        return _caches.setdefault(key, _AlarmCache())


@dataclass(frozen=True)
class Standing:
    """An identity's standing at one gateway: the alarms in force and what they do to its budget."""

    identity: str
    operator: str
    in_force: tuple[Alarm, ...]
    factor: float
    suspended: bool
    until_ms: int | None      # when the earliest alarm in force ages out (None: none in force)

    def limits(self, rate: float | None, daily: int | None) -> tuple[float | None, int | None]:
        """The rate (per second) and daily quota in force for a key configured with ``rate`` / ``daily``."""
        if not self.in_force:
            return rate, daily
        base = daily if daily is not None else UNLIMITED_CAP
        return (None if rate is None else rate * self.factor), max(0, math.floor(base * self.factor))

    def describe(self) -> str:
        if not self.in_force:
            return f"{self.identity}: no extraction alarm in force"
        entries = ", ".join(str(a.index) for a in self.in_force)
        if self.suspended:
            return (f"{self.identity} is suspended: {len(self.in_force)} extraction alarms in force (entries "
                    f"{entries}); the first ages out at {_iso(self.until_ms)}")
        return (f"{self.identity}: {len(self.in_force)} extraction alarm(s) in force (entries {entries}); budget "
                f"x{self.factor:g}")

    def to_dict(self) -> dict[str, Any]:
        return {"identity": self.identity, "operator": self.operator, "alarms": [a.index for a in self.in_force],
                "factor": self.factor, "suspended": self.suspended,
                "until": _iso(self.until_ms) if self.until_ms is not None else None}


def _iso(ms: int | None) -> str:
    return "" if ms is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def rule(all_alarms: list[Alarm], operator: str, identity: str, now_ms: int) -> Standing:
    """The budget rule, pure: the alarms by ``operator`` about ``identity`` signed within
    :data:`ALARM_WINDOW_S` before ``now_ms`` are in force; each multiplies the budget by :data:`SHRINK`,
    :data:`SUSPEND_AFTER` of them suspend the identity.  Alarms by any other key have no effect."""
    live = tuple(a for a in all_alarms if a.signer == operator and a.identity == identity
                 and a.time_ms - 600_000 <= now_ms < a.time_ms + ALARM_WINDOW_S * 1000)
    n = len(live)
    until = min(a.time_ms for a in live) + ALARM_WINDOW_S * 1000 if live else None
    return Standing(identity, operator, live, SHRINK ** n, n >= SUSPEND_AFTER, until)


def standing(ledger: Any, operator: str, identity: str, *, now: float | None = None) -> Standing:
    """The one answer to "what budget does ``identity`` have at the gateway whose operator key is
    ``operator``?" (the gateway before charging a budget, ``gateway alarms``)."""
    now_ms = int((time.time() if now is None else now) * 1000)
    return rule(alarms(ledger), operator, identity, now_ms)


def alarm_body(det: Detection, model: str, config: DetectorConfig) -> dict[str, Any]:
    milli = [round(d * 1000) for d in det.distances]
    digest = hashlib.sha256(json.dumps(milli, separators=(",", ":")).encode()).hexdigest()
    w, p = shapiro_w([m / 1000 for m in milli])  # the statistic of exactly the evidence logged
    return {"identity": det.identity, "model": model, "detector": "prada", "test": "shapiro-wilk",
            "w": round(w, 6), "p": float(f"{p:.6g}"), "delta": config.delta, "queries": det.queries,
            "config": config.to_dict(), "distances_milli": milli, "distances_sha256": digest,
            "rule": {"window_s": ALARM_WINDOW_S, "shrink": SHRINK, "suspend_after": SUSPEND_AFTER}}


def check_alarm(entry: Any) -> dict[str, Any]:
    """Recompute an alarm's test from its evidence; raise :class:`VerificationError` unless ``W < delta``
    holds for the distances it carries (and its signature, digest and stated W agree)."""
    entry.verify()
    b = entry.body
    if entry.type != ALARM_TYPE:
        raise BadInputError(f"entry is a {entry.type}, not an {ALARM_TYPE}", field="type")
    milli = b.get("distances_milli")
    if not isinstance(milli, list) or not all(type(m) is int for m in milli) or len(milli) < 20:
        raise BadInputError("alarm carries no distance sample (distances_milli)", field="distances_milli")
    digest = hashlib.sha256(json.dumps(milli, separators=(",", ":")).encode()).hexdigest()
    if digest != b.get("distances_sha256"):
        raise VerificationError("alarm's distance digest does not match its distances",
                                expected=b.get("distances_sha256"), found=digest)
    w, _p = shapiro_w([m / 1000 for m in milli])
    if abs(w - float(b.get("w", -1))) > 1e-4:
        raise VerificationError("alarm's W does not match its distances", expected=b.get("w"), found=round(w, 6))
    if not w < float(b.get("delta", 0)):
        raise VerificationError("alarm's distances pass the normality test", expected=f"W < {b.get('delta')}",
                                found=round(w, 6))
    return {"ok": True, "identity": b.get("identity"), "w": round(w, 6), "delta": b.get("delta"), "n": len(milli)}


# -- output hardening -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hardening:
    top1: bool = False               # answer the label only
    decimals: int | None = None      # round probabilities to this many places

    def __post_init__(self) -> None:
        if self.decimals is not None and not 0 <= self.decimals <= 12:
            raise BadInputError("decimals must be between 0 and 12", field="decimals", found=self.decimals)

    @property
    def active(self) -> bool:
        return self.top1 or self.decimals is not None

    def apply(self, out: dict[str, Any], probs_key: str = "probabilities") -> dict[str, Any]:
        if probs_key not in out:
            return out
        out = dict(out)
        if self.top1:
            del out[probs_key]
        elif self.decimals is not None and isinstance(out[probs_key], list):
            d = self.decimals
            out[probs_key] = [[round(float(v), d) for v in row] if isinstance(row, list) else row
                              for row in out[probs_key]]
        return out


# -- the gateway hook -------------------------------------------------------------------------------------------

class ExtractionGuard:
    """What the gateway calls (``Gateway(extraction=...)``): :meth:`admit` before a budget is charged and
    :meth:`observe` once the model answered.  Calls shaped ``{"features": [[...], ...]}`` answered
    ``{"labels": [...], ...}`` are seen by the detector, one query per row; other calls are not."""

    def __init__(self, ledger: Any, model: str, signer: Any, *, detect: bool = True,
                 config: DetectorConfig | None = None, hardening: Hardening | None = None,
                 features_key: str = "features", labels_key: str = "labels",
                 probs_key: str = "probabilities", refresh_s: float = 0.25) -> None:
        self.ledger = ledger
        self.model = model
        self.signer = signer
        self.detector = PradaDetector(config) if detect else None
        self.hardening = hardening or Hardening()
        self.features_key, self.labels_key, self.probs_key = features_key, labels_key, probs_key
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._alarms: list[Alarm] = []
        self._read_at = -math.inf
        self.raised: list[int] = []   # indices of the alarms this guard wrote

    @property
    def operator(self) -> str:
        return str(self.signer.did)

    def standing(self, identity: str) -> Standing:
        now = time.monotonic()
        if now - self._read_at >= self.refresh_s:
            self._alarms = alarms(self.ledger)
            self._read_at = now
        return rule(self._alarms, self.operator, identity, int(time.time() * 1000))

    def admit(self, identity: str, rate: float | None, daily: int | None) -> tuple[str | None, float | None,
                                                                                   int | None]:
        """(refusal message or None, rate, daily quota) for this identity now."""
        s = self.standing(identity)
        if s.suspended:
            return s.describe(), rate, daily
        r, d = s.limits(rate, daily)
        return None, r, d

    def observe(self, identity: str, request: Any, answer: Any) -> tuple[Any, int | None]:
        """(the answer as the caller gets it, index of an alarm written now or None)."""
        alarm = None
        if self.detector is not None and isinstance(request, dict) and isinstance(answer, dict):
            rows, labels = request.get(self.features_key), answer.get(self.labels_key)
            if isinstance(rows, list) and isinstance(labels, list) and len(rows) == len(labels):
                with self._lock:
                    for x, lab in zip(rows, labels):
                        if not isinstance(x, list) or isinstance(lab, (dict, list)):
                            continue
                        try:
                            det = self.detector.observe(identity, x, lab)
                        except (BadInputError, ValueError, TypeError):
                            continue  # a query this detector cannot measure (ragged rows): not seen
                        if det is not None:
                            alarm = self._raise(det)
                            break
        if self.hardening.active and isinstance(answer, dict):
            answer = self.hardening.apply(answer, self.probs_key)
        return answer, alarm

    def _raise(self, det: Detection) -> int:
        assert self.detector is not None
        body = alarm_body(det, self.model, self.detector.config)
        res = self.ledger.append_record(ALARM_TYPE, body, self.signer)
        self.detector.reset(det.identity)
        self.raised.append(int(res.index))
        self._read_at = -math.inf  # the next admit reads the new alarm
        return int(res.index)
