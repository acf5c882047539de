"""RFC 8785 JSON Canonicalization Scheme (JCS).

One function, :func:`canonical_json`, produces the bytes that every signature in
ailedger covers.  Keys are sorted by UTF-16 code units, strings use the minimal
JSON escapes, numbers use the ECMAScript ``Number.prototype.toString`` form.

The fast path hands structures with no floats and only BMP keys to the C
encoder of :mod:`json`, whose output coincides with JCS for them; anything else
takes the exact (slower) path.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from typing import Any

try:  # a faster encoder whose output equals JCS on the fast path (property-tested in tests/core)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None  # type: ignore[assignment]

from ailedger.errors import BadInputError

_c_needs_slow_path: Callable[[Any], bool] | None
try:  # the same walk in C for orjson's values (any other type: the slow path); tested against _needs_slow_path
    from ailedger.encoding import _speedups as _c
except ImportError:  # not built
    _c_needs_slow_path = None
else:
    _c_needs_slow_path = getattr(_c, "needs_slow_path", None)  # None in a module built before it existed

__all__ = ["MAX_JSON_DEPTH", "canonical_json", "parse_canonical", "parse_json"]

_fast_encoder = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


_SCALARS = (str, int, bool, type(None))


def _needs_slow_path(obj: Any) -> bool:
    """True when the C encoder's output could differ from JCS (floats; keys that sort
    differently in UTF-16); raises on values JSON cannot hold."""
    stack = [obj]
    while stack:
        o = stack.pop()
        t = type(o)
        if t is dict:
            for k, v in o.items():
                if type(k) is not str:
                    raise BadInputError(f"JSON object keys must be strings, got {type(k).__name__}")
                if not k.isascii() and max(k) >= "\ud800":
                    return True
                tv = type(v)
                if tv is dict or tv is list or tv is tuple:
                    stack.append(v)
                elif tv is float:
                    return True
                elif tv not in _SCALARS:
                    raise BadInputError(f"value of type {tv.__name__} cannot be canonicalised as JSON")
        elif t is list or t is tuple:
            for v in o:
                tv = type(v)
                if tv is dict or tv is list or tv is tuple:
                    stack.append(v)
                elif tv is float:
                    return True
                elif tv not in _SCALARS:
                    raise BadInputError(f"value of type {tv.__name__} cannot be canonicalised as JSON")
        elif t is float:
            return True
        elif t not in _SCALARS:
            raise BadInputError(f"value of type {t.__name__} cannot be canonicalised as JSON")
    return False


_fast_needs_slow_path: Callable[[Any], bool] = _c_needs_slow_path if _c_needs_slow_path is not None else _needs_slow_path


def _number(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        raise BadInputError("NaN and Infinity have no JSON form")
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) < 2**53:
        return str(int(x))
    r = repr(x)  # shortest round-trip digits
    mantissa, _, exp_s = r.partition("e")
    neg = mantissa.startswith("-")
    if neg:
        mantissa = mantissa[1:]
    exp = int(exp_s) if exp_s else 0
    intpart, _, frac = mantissa.partition(".")
    digits = (intpart + frac).lstrip("0")
    # decimal exponent n such that value = 0.d1d2... * 10^n
    if intpart.strip("0"):
        n = len(intpart.lstrip("0")) + exp
    else:
        n = exp - (len(frac) - len(frac.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        sign = "+" if e >= 0 else "-"
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + sign + str(abs(e))
    return ("-" if neg else "") + s


def _string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _slow(o: Any, out: list[str]) -> None:
    t = type(o)
    if o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif t is int:
        out.append(str(o))
    elif t is float:
        out.append(_number(o))
    elif t is str:
        out.append(_string(o))
    elif t is list or t is tuple:
        out.append("[")
        for i, v in enumerate(o):
            if i:
                out.append(",")
            _slow(v, out)
        out.append("]")
    elif t is dict:
        out.append("{")
        keys = sorted(o.keys(), key=lambda k: k.encode("utf-16-be"))
        for i, k in enumerate(keys):
            if i:
                out.append(",")
            out.append(_string(k))
            out.append(":")
            _slow(o[k], out)
        out.append("}")
    else:
        raise BadInputError(f"value of type {t.__name__} cannot be canonicalised as JSON")


def canonical_json(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value."""
    if not _needs_slow_path(obj):
        if _orjson is not None:
            try:
                return _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS)
            except (TypeError, _orjson.JSONEncodeError):
                pass  # e.g. an integer beyond 64 bits: the standard encoder handles it
        try:
            return _fast_encoder.encode(obj).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadInputError("string contains a lone surrogate, which has no UTF-8 form") from exc
    out: list[str] = []
    _slow(obj, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadInputError("string contains a lone surrogate, which has no UTF-8 form") from exc


def parse_canonical(data: bytes) -> Any:
    """The value of ``data`` when ``data`` is already its own canonical form on the fast path (no
    floats, keys that sort alike in UTF-16 and in code points, at most 254 levels), else None.

    Such bytes pass every check of :func:`parse_json` (a duplicate key, NaN, an overlong integer or
    bad UTF-8 cannot re-encode to the same bytes), and every value inside has as its canonical
    form ``orjson.dumps(value, option=OPT_SORT_KEYS)``, with no further walk: what clients that
    send canonical entries (ailedger's own) save the server per entry (bench/RESULTS.md)."""
    if _orjson is None:  # pragma: no cover - orjson is a declared dependency
        return None
    try:
        obj = _orjson.loads(data)
        if _fast_needs_slow_path(obj):
            return None
        out = _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS)
    except (ValueError, TypeError, BadInputError):  # orjson's decode and encode errors are ValueErrors/TypeErrors
        return None
    return obj if out == data else None


def _canonical_value_bytes(value: Any) -> bytes:
    """The canonical bytes of a value taken from a :func:`parse_canonical` result (no walk, no checks)."""
    return _orjson.dumps(value, option=_orjson.OPT_SORT_KEYS)


# the same as a C callable (no Python frame per call: it runs for every entry written)
canonical_value_bytes: Callable[[Any], bytes] = (
    functools.partial(_orjson.dumps, option=_orjson.OPT_SORT_KEYS) if _orjson is not None else _canonical_value_bytes)


def _reject_constant(name: str) -> Any:
    raise BadInputError(f"{name} is not valid JSON")


def _no_dup_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise BadInputError(f"duplicate JSON key {k!r}", field=k)
        d[k] = v
    return d


def _finite_float(s: str) -> float:
    x = float(s)
    if math.isinf(x):
        raise BadInputError(f"JSON number {s[:40]}{'...' if len(s) > 40 else ''} is out of range")
    return x


MAX_JSON_DEPTH = 500
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET_RUNS = re.compile(r"\[+|\]+")
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_TO_BRACKETS = str.maketrans("{}", "[]")


def _check_depth(text: str, what: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH before ``json.loads`` recurses into it.

    ``json.loads`` recurses on the C stack once per level, bounded only by the interpreter's
    recursion limit: a library that raises that limit (py_ecc, imported with web3, sets 100,000)
    turns a deeply nested document into a segmentation fault instead of a RecursionError. A
    document with fewer opening brackets than the limit cannot be deeper and is not scanned."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text)).translate(_TO_BRACKETS)
    rest = brackets
    for _ in range(8):  # usual documents are shallow: peeling the innermost pairs empties them quickly
        rest = rest.replace("[]", "")
        if not rest:
            return
    depth = 0
    for run in _BRACKET_RUNS.finditer(brackets):
        n = run.end() - run.start()
        depth += n if brackets[run.start()] == "[" else -n
        if depth > MAX_JSON_DEPTH:
            raise BadInputError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")


def parse_json(data: bytes | str, *, what: str = "JSON") -> Any:
    """Strict JSON parse: no NaN/Infinity (nor numbers that overflow to them), no duplicate keys, at most
    MAX_JSON_DEPTH levels; errors name the position. Any input gives a value or a BadInputError:
    integers longer than Python's int-string limit (4300 digits) are bad input, not crashes."""
    try:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        _check_depth(data, what)
        return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float,
                          object_pairs_hook=_no_dup_pairs)
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{what} is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{what} does not parse: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        raise BadInputError(f"{what} is nested too deeply") from None
    except ValueError as exc:  # an integer beyond sys.get_int_max_str_digits()
        raise BadInputError(f"{what} has a number too long to read: {str(exc)[:120]}") from None
