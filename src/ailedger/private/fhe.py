"""Inference on encrypted inputs: CKKS (TenSEAL) evaluation of a registered digits model.

The client makes a CKKS key pair (:func:`keygen`), encrypts one digit (:func:`encrypt`) and sends the
ciphertext envelope with its public context (evaluation keys, no secret key).  The server
(:class:`FheServer`) checks the envelope (size, format, parameters, key id), evaluates the registered
model on the ciphertext and answers another envelope; the client decrypts it (:func:`decrypt`).  The server
logs one inference record (the SDK's ``inference.batch``) that names the registered model and commits to
both ciphertexts' SHA-256 digests: the audit trail exists although the operator never saw the input.

Envelope (bytes): ``AILFHE1\\n``, a 4-byte big-endian header length, the header as RFC 8785 JSON
(``v``, ``kind``: ``query`` / ``answer``, ``params``, ``key``: SHA-256 of the public context, ``size``),
then the TenSEAL-serialised ``CKKSVector``.

The model is evaluated with a bias folded into the first matrix (the input gets a constant 1 appended):
TenSEAL's vector-matrix product leaves a layout that a plain bias added before a second product breaks.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, VerificationError
from ailedger.private.digits import CLASSES, DigitsModel, check_input

__all__ = ["MAGIC", "MAX_ENVELOPE_BYTES", "PARAMS", "FheKeys", "FheServer", "MalformedCiphertextError",
           "OtherKeyError", "OtherParamsError", "decrypt", "decrypt_batch", "encrypt",
           "encrypt_batch", "keygen", "load_keys", "open_envelope"]

MAGIC = b"AILFHE1\n"
POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (40, 30, 30, 30, 40)  # 170 bits: 128-bit security at N=8192 (<= 218 bits); depth 3
SCALE_BITS = 30
PARAMS = f"ckks-n{POLY_MODULUS_DEGREE}-q{'.'.join(map(str, COEFF_MOD_BIT_SIZES))}-s{SCALE_BITS}"
MAX_ENVELOPE_BYTES = 1 << 20  # a query is ~0.32 MB; anything above 1 MiB is refused unread
MAX_BATCH_ENVELOPE_BYTES = 64 << 20  # a batch query: 65 ciphertexts of ~0.32 MB
MAX_BATCH_ROWS = POLY_MODULUS_DEGREE // 2  # one CKKS slot per digit
MAX_HEADER_BYTES = 4096
LOGIT_BOUND = 1e4  # an answer decrypted under the wrong key is noise of magnitude ~2^40/2^30 and far beyond


class MalformedCiphertextError(BadInputError):
    code = "malformed_ciphertext"


class OtherParamsError(BadInputError):
    code = "other_params"


class OtherKeyError(BadInputError):
    code = "other_key"


def _ts() -> Any:
    import tenseal

    return tenseal


def key_id(public_bytes: bytes) -> str:
    return hashlib.sha256(public_bytes).hexdigest()


@dataclass
class FheKeys:
    """A client's CKKS context: ``secret`` (with the secret key; None on the server) and ``public`` bytes
    (parameters, relinearisation and Galois keys)."""

    public: bytes
    secret: bytes | None = None
    _ctx: Any = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        return key_id(self.public)

    def secret_context(self) -> Any:
        """The parsed secret context (parsed once)."""
        if self.secret is None:
            raise BadInputError("this needs the client's keys (secret.ctx)", field="keys")
        if self._ctx is None:
            self._ctx = _context(self.secret, "secret.ctx")
        return self._ctx


def keygen() -> FheKeys:
    """A fresh CKKS key pair with the parameters :data:`PARAMS`."""
    ts = _ts()
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, POLY_MODULUS_DEGREE, coeff_mod_bit_sizes=list(COEFF_MOD_BIT_SIZES))
    ctx.global_scale = 2 ** SCALE_BITS
    ctx.generate_galois_keys()
    secret = ctx.serialize(save_secret_key=True, save_galois_keys=False, save_relin_keys=False)
    ctx.make_context_public()
    public = ctx.serialize(save_galois_keys=True, save_relin_keys=True)
    return FheKeys(public=public, secret=secret)


def save_keys(keys: FheKeys, folder: str | Path) -> dict[str, Any]:
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    (d / "public.ctx").write_bytes(keys.public)
    if keys.secret is not None:
        fd = os.open(d / "secret.ctx", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(keys.secret)
    (d / "key.json").write_text(json.dumps({"key": keys.id, "params": PARAMS}, indent=1) + "\n")
    return {"key": keys.id, "params": PARAMS, "public": str(d / "public.ctx"), "public_bytes": len(keys.public),
            "secret": str(d / "secret.ctx") if keys.secret is not None else None}


def load_keys(folder: str | Path, *, secret: bool) -> FheKeys:
    d = Path(folder)
    try:
        public = (d / "public.ctx").read_bytes()
        sec = (d / "secret.ctx").read_bytes() if secret else None
    except FileNotFoundError as exc:
        raise BadInputError(f"{exc.filename} is missing: make keys with `ailedger private fhe-keygen`",
                            field="keys") from None
    return FheKeys(public=public, secret=sec)


def _context(data: bytes, what: str) -> Any:
    try:
        return _ts().context_from(data)
    except (ValueError, RuntimeError, TypeError) as exc:  # TenSEAL passes on SEAL's text
        raise BadInputError(f"{what} is not a TenSEAL CKKS context: {exc}", field="keys") from None


def _envelope(kind: str, key: str, size: int, ct: bytes) -> bytes:
    header = canonical_json({"v": 1, "kind": kind, "params": PARAMS, "key": key, "size": size})
    return MAGIC + struct.pack(">I", len(header)) + header + ct


def envelope_kind(data: bytes) -> str | None:
    """The ``kind`` an envelope's header names, or None when it is not a readable envelope (the full checks
    are :func:`open_envelope`'s)."""
    try:
        (n,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
        if not data.startswith(MAGIC) or n > MAX_HEADER_BYTES:
            return None
        kind = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + n]).get("kind")
    except (struct.error, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def open_envelope(data: bytes, *, kind: str, key: str) -> tuple[dict[str, Any], bytes]:
    """(header, ciphertext bytes) of an envelope, checked for size, format, parameters and key id;
    BadInputError naming what is wrong."""
    limit = MAX_BATCH_ENVELOPE_BYTES if kind.startswith("batch-") else MAX_ENVELOPE_BYTES
    if len(data) > limit:
        raise BadInputError(f"ciphertext envelope is {len(data)} bytes, over the {limit}-byte limit",
                            field="ciphertext")
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise MalformedCiphertextError("malformed ciphertext: not an ailedger FHE envelope (AILFHE1)", field="ciphertext")
    (n,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
    if n > MAX_HEADER_BYTES or len(MAGIC) + 4 + n > len(data):
        raise MalformedCiphertextError("malformed ciphertext: envelope header length out of range", field="ciphertext")
    try:
        header = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + n])
    except ValueError:
        raise MalformedCiphertextError("malformed ciphertext: envelope header is not JSON", field="ciphertext") from None
    if not isinstance(header, dict) or header.get("v") != 1 or header.get("kind") != kind:
        raise MalformedCiphertextError(f"malformed ciphertext: expected an envelope of kind {kind!r}", field="ciphertext")
    if header.get("params") != PARAMS:
        raise OtherParamsError(f"ciphertext is under other CKKS parameters ({header.get('params')!r}; this server "
                            f"evaluates {PARAMS})", field="ciphertext")
    if header.get("key") != key:
        raise OtherKeyError(f"ciphertext is under another key ({str(header.get('key'))[:16]}...; this session's key "
                            f"is {key[:16]}...)", field="ciphertext")
    return header, data[len(MAGIC) + 4 + n:]


def _vector(ctx: Any, ct: bytes) -> Any:
    try:
        return _ts().ckks_vector_from(ctx, ct)
    except (ValueError, RuntimeError, TypeError) as exc:
        msg = str(exc)
        if "invalid" in msg:
            raise OtherParamsError(f"ciphertext does not fit this key's CKKS parameters: {msg}",
                                field="ciphertext") from None
        raise MalformedCiphertextError(f"malformed ciphertext: {msg}", field="ciphertext") from None


def encrypt(keys: FheKeys, x: Any) -> bytes:
    """Encrypt one digit (64 values in [0, 1], a constant 1 appended) into a query envelope."""
    a = check_input(x)
    ctx = keys.secret_context()
    vec = _ts().ckks_vector(ctx, [*a.tolist(), 1.0])
    return _envelope("query", keys.id, len(a) + 1, vec.serialize())


def decrypt(keys: FheKeys, answer: bytes) -> dict[str, Any]:
    """The class and the logits in an answer envelope.  VerificationError when it does not decrypt to
    plausible logits (it was computed on a ciphertext under another key)."""
    import numpy as np

    ctx = keys.secret_context()
    _, ct = open_envelope(answer, kind="answer", key=keys.id)
    out = np.array(_vector(ctx, ct).decrypt())
    if out.shape != (CLASSES,) or not np.isfinite(out).all() or np.abs(out).max() > LOGIT_BOUND:
        raise VerificationError("the answer does not decrypt to logits under this key (was the query encrypted "
                                "under another key?)", expected=f"{CLASSES} logits below {LOGIT_BOUND:g}",
                                found=f"max |value| {float(np.abs(out).max()):.3g}")
    return {"class": int(out.argmax()), "logits": [round(float(v), 6) for v in out]}


class FheServer:
    """Evaluates one model on ciphertexts under one client's public context."""

    def __init__(self, model: DigitsModel, public: bytes) -> None:
        import numpy as np

        self.model = model
        self.key = key_id(public)
        self.ctx = _context(public, "the public context")
        if self.ctx.has_secret_key():
            raise BadInputError("the server was handed a context holding the secret key: send public.ctx only",
                                field="keys")
        ts = _ts()
        (W0, b0), *rest = model.layers
        self._rows = W0.shape[0] + 1
        self._first = ts.plain_tensor(np.vstack([W0, b0]).tolist())  # encoded once, not per query
        self._rest = [(ts.plain_tensor(W.tolist()), b.tolist()) for W, b in rest]
        self._square = len(model.layers) > 1
        self._dense = model.layers

    def evaluate(self, query: bytes) -> bytes:
        _, ct = open_envelope(query, kind="query", key=self.key)
        vec = _vector(self.ctx, ct)
        if vec.size() != self._rows:
            raise MalformedCiphertextError(f"the query holds {vec.size()} values; the model takes {self._rows - 1} "
                                "(+1 constant)", field="ciphertext")
        try:
            v = vec.mm(self._first)
            for W, b in self._rest:
                v = v.square() if self._square else v
                v = v.mm(W) + b
        except (ValueError, RuntimeError) as exc:
            raise MalformedCiphertextError(f"the ciphertext cannot be evaluated: {exc}", field="ciphertext") from None
        return _envelope("answer", self.key, CLASSES, v.serialize())

    def evaluate_batch(self, query: bytes) -> bytes:
        """A batch query (:func:`encrypt_batch`) -> a batch answer of 10 column ciphertexts."""
        return _evaluate_batch(self, query)

    def evaluate_any(self, query: bytes) -> bytes:
        """A query or a batch query, by its envelope's kind."""
        return self.evaluate_batch(query) if envelope_kind(query) == "batch-query" else self.evaluate(query)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def infer_logged(trail: Any, server: FheServer, query: bytes, *, caller: str | None = None) -> dict[str, Any]:
    """Evaluate ``query`` and log its record on ``trail`` (an :class:`~ailedger.inference.InferenceTrail`
    of the registered model): the record commits to both ciphertexts' digests and names the key and the
    parameters in clear.  Nothing is logged for a refused ciphertext."""
    t0 = time.perf_counter()
    answer = server.evaluate_any(query)
    seconds = time.perf_counter() - t0
    d_in, d_out = digest(query), digest(answer)
    rows = json.loads(answer[len(MAGIC) + 4:len(MAGIC) + 4 + struct.unpack(">I", answer[8:12])[0]])["size"]
    meta = {"private": "fhe", "scheme": "ckks", "library": "tenseal", "params": PARAMS, "key": server.key,
            "in_sha256": d_in, "out_sha256": d_out, "digits": rows if envelope_kind(answer) == "batch-answer" else 1}
    rec = trail.record({"ciphertext_sha256": d_in, "bytes": len(query)},
                       {"ciphertext_sha256": d_out, "bytes": len(answer)}, caller=caller, meta=meta)
    return {"answer": answer, "receipt": rec.id, "in_sha256": d_in, "out_sha256": d_out, "seconds": seconds,
            "bytes_in": len(query), "bytes_out": len(answer)}


# -- batches: one ciphertext per feature, one CKKS slot per digit --------------------------------------------
# Column packing: ciphertext j holds feature j of every digit of the batch (up to N/2 = 4096).  A dense layer
# is then sums of ciphertext-times-scalar products, with no rotation and no Galois key; the square is one
# ciphertext product per hidden unit.  One batch answers many digits of one client at once.

def _pack(cts: list[bytes]) -> bytes:
    return struct.pack(">I", len(cts)) + b"".join(struct.pack(">I", len(c)) + c for c in cts)


def _unpack(body: bytes, want: int) -> list[bytes]:
    if len(body) < 4:
        raise MalformedCiphertextError("malformed ciphertext: empty batch", field="ciphertext")
    (n,) = struct.unpack(">I", body[:4])
    if n != want:
        raise BadInputError(f"the batch holds {n} ciphertexts; expected {want}", field="ciphertext")
    out, pos = [], 4
    for _ in range(n):
        if pos + 4 > len(body):
            raise MalformedCiphertextError("malformed ciphertext: batch cut short", field="ciphertext")
        (m,) = struct.unpack(">I", body[pos:pos + 4])
        pos += 4
        if pos + m > len(body):
            raise MalformedCiphertextError("malformed ciphertext: batch cut short", field="ciphertext")
        out.append(body[pos:pos + m])
        pos += m
    if pos != len(body):
        raise MalformedCiphertextError("malformed ciphertext: trailing bytes after the batch", field="ciphertext")
    return out


def encrypt_batch(keys: FheKeys, X: Any) -> bytes:
    """Encrypt up to 4096 digits (rows of 64 values in [0, 1]) as 64 column ciphertexts."""
    import numpy as np

    A = np.asarray([check_input(r) for r in X])
    if not 1 <= len(A) <= MAX_BATCH_ROWS:
        raise BadInputError(f"a batch holds 1 to {MAX_BATCH_ROWS} digits, got {len(A)}", field="input")
    ctx = keys.secret_context()
    ts = _ts()
    cts = [ts.ckks_vector(ctx, A[:, j].tolist()).serialize() for j in range(A.shape[1])]
    return _envelope("batch-query", keys.id, len(A), _pack(cts))


def decrypt_batch(keys: FheKeys, answer: bytes) -> Any:
    """The (rows x 10) logits of a batch answer; VerificationError as :func:`decrypt`."""
    import numpy as np

    ctx = keys.secret_context()
    header, body = open_envelope(answer, kind="batch-answer", key=keys.id)
    cols = [_vector(ctx, c).decrypt() for c in _unpack(body, CLASSES)]
    out = np.array(cols).T
    if out.shape != (header.get("size"), CLASSES) or not np.isfinite(out).all() or np.abs(out).max() > LOGIT_BOUND:
        raise VerificationError("the answer does not decrypt to logits under this key (was the query encrypted "
                                "under another key?)", expected=f"{CLASSES} logits below {LOGIT_BOUND:g} per row",
                                found=f"shape {out.shape}, max |value| {float(np.abs(out).max()):.3g}")
    return out


def _evaluate_batch(self: FheServer, query: bytes) -> bytes:
    header, body = open_envelope(query, kind="batch-query", key=self.key)
    rows = header.get("size")
    if not isinstance(rows, int) or not 1 <= rows <= MAX_BATCH_ROWS:
        raise MalformedCiphertextError("malformed ciphertext: batch size out of range", field="ciphertext")
    cols = [_vector(self.ctx, c) for c in _unpack(body, self._rows - 1)]
    if any(c.size() != rows for c in cols):
        raise BadInputError(f"the batch's ciphertexts do not all hold {rows} digits", field="ciphertext")
    try:
        h = cols
        for li, (W, b) in enumerate(self._dense):
            nxt = []
            for k in range(W.shape[1]):
                acc = h[0] * float(W[0, k])
                for j in range(1, len(h)):
                    acc += h[j] * float(W[j, k])
                nxt.append(acc + float(b[k]))
            h = [v.square() for v in nxt] if li < len(self._dense) - 1 else nxt
    except (ValueError, RuntimeError) as exc:
        raise MalformedCiphertextError(f"the ciphertext cannot be evaluated: {exc}", field="ciphertext") from None
    return _envelope("batch-answer", self.key, rows, _pack([v.serialize() for v in h]))

