"""C2PA (Content Credentials) manifests through the official ``c2pa-python`` library.

* ``read_manifest``: summarise an embedded manifest (or a sidecar ``.c2pa`` manifest store)
  with the library's own validation verdict.  "Invalid" is reported as such; only the
  library's ``Valid``/``Trusted`` states count as a valid signature.
* ``write_manifest``: a manifest whose custom assertion ``org.ailedger.record`` points at the
  ledger record (origin, index, leaf hash, signer did); embedded into a copy of the asset, or
  as a sidecar (``set_no_embed``) so the asset stays byte-identical.

No network: no timestamp authority (ta_url=None), no remote manifests.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from ailedger.errors import BadInputError

ASSERTION = "org.ailedger.record"
SOURCE_CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
SOURCE_AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

# formats c2pa can carry embedded manifests in (sidecars work for any of these too)
MIME_OK = {"image/jpeg", "image/png", "image/webp", "image/tiff", "image/gif", "image/avif", "image/heic",
           "audio/wav", "audio/mpeg", "video/mp4", "application/pdf", "image/svg+xml"}


def _c2pa() -> Any:
    import c2pa

    return c2pa


def _context(trust_anchors_pem: str | None) -> Any:
    c2pa = _c2pa()
    settings: dict[str, Any] = {}
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    return c2pa.Context.from_dict(settings) if settings else None


def read_manifest(data: bytes, mime: str, sidecar: bytes | None = None,
                  trust_anchors_pem: str | None = None) -> dict[str, Any] | None:
    """Summary of the active manifest, or None when the asset carries none (and no sidecar)."""
    c2pa = _c2pa()
    if mime not in MIME_OK:
        return None if sidecar is None else {"state": "unsupported", "error": f"C2PA cannot read {mime}"}
    ctx = _context(trust_anchors_pem)
    try:
        kwargs: dict[str, Any] = {"context": ctx} if ctx is not None else {}
        if sidecar is not None:
            reader = c2pa.Reader(mime, io.BytesIO(data), sidecar, **kwargs)
        else:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, **kwargs)
            if reader is None:
                return None
    except c2pa.C2paError as e:
        msg = str(e)
        if sidecar is None and ("ManifestNotFound" in type(e).__name__ or "no JUMBF" in msg):
            return None
        # a manifest is there but cannot even be parsed: that is a clear "invalid"
        return {"state": "Invalid", "error": msg[:300], "signature_valid": False}
    with reader:
        state = reader.get_validation_state() or "Unknown"
        results = reader.get_validation_results() or {}
        active = reader.get_active_manifest() or {}
    failures = [f.get("code") for f in (results.get("activeManifest") or {}).get("failure", [])]
    sig = active.get("signature_info") or {}
    record = None
    actions: list[str] = []
    sources: list[str] = []
    for a in active.get("assertions", []) or []:
        if a.get("label") == ASSERTION:
            record = a.get("data")
        if str(a.get("label", "")).startswith("c2pa.actions"):
            for act in (a.get("data") or {}).get("actions", []):
                actions.append(str(act.get("action")))
                if act.get("digitalSourceType"):
                    sources.append(str(act["digitalSourceType"]))
    gen = active.get("claim_generator_info") or []
    return {
        "state": state,  # Trusted | Valid | Invalid (library's verdict)
        "signature_valid": state in ("Valid", "Trusted"),
        "trusted": state == "Trusted",
        "failures": [f for f in failures if f],
        "label": active.get("label"),
        "title": active.get("title"),
        "claim_generator": [g.get("name") for g in gen if isinstance(g, dict)],
        "signer": {"issuer": sig.get("issuer"), "common_name": sig.get("common_name")},
        "actions": actions,
        "digital_source_types": sources,
        "ailedger_record": record,
        "embedded": sidecar is None,
    }


@dataclass(frozen=True)
class C2paSigningKey:
    cert_chain_pem: bytes  # leaf first, then intermediates / CA
    private_key_pem: bytes
    alg: str = "es256"


def write_manifest(data: bytes, mime: str, record_ref: dict[str, Any], key: C2paSigningKey, *,
                   title: str, ai_generated: bool, embed: bool) -> tuple[bytes, bytes | None]:
    """Sign a manifest pointing at ``record_ref``.  Returns (manifest_store_bytes, embedded_asset or None)."""
    c2pa = _c2pa()
    if mime not in MIME_OK:
        raise BadInputError(f"C2PA cannot carry a manifest for {mime}", field="file")
    manifest = {
        "claim_generator_info": [{"name": "ailedger", "version": "0.1.0"}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": SOURCE_AI if ai_generated else SOURCE_CAPTURE}]}},
            {"label": ASSERTION, "data": record_ref},
        ],
    }
    try:
        info = c2pa.C2paSignerInfo(key.alg, key.cert_chain_pem, key.private_key_pem, None)
        signer = c2pa.Signer.from_info(info)
        builder = c2pa.Builder(json.dumps(manifest))
        if not embed:
            builder.set_no_embed()
        out = io.BytesIO()
        manifest_bytes = builder.sign(signer, mime, io.BytesIO(data), out)
    except c2pa.C2paError as e:
        raise BadInputError(f"C2PA signing failed: {e}", field="c2pa") from e
    return bytes(manifest_bytes), (out.getvalue() if embed else None)


@dataclass(frozen=True)
class TestChain:
    """A throw-away certificate chain for trying C2PA signing: NOT for publishing real content."""

    chain_pem: bytes  # leaf first, then the CA: what ``c2pa-sign --cert`` takes
    key_pem: bytes  # the leaf's private key (PKCS#8, unencrypted)
    ca_pem: bytes  # the CA: what ``content verify --trust-anchors`` takes
    leaf_pem: bytes  # the leaf alone (the library refuses a leaf without its issuer)


def make_test_chain(days: int = 30, name: str = "ailedger test") -> TestChain:
    """A new P-256 CA and a leaf fit for C2PA signing (digitalSignature, emailProtection), valid ``days``.

    The C2PA library refuses self-signed signing certificates, so the leaf is issued by its own CA; give the
    CA to a verifier as a trust anchor to see the manifest as trusted. Both keys are new on every call.
    """
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not 1 <= days <= 3650:
        raise BadInputError(f"--days must be between 1 and 3650, got {days}", field="--days")

    def dn(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{name} (throw-away)")])

    def usage(cert_sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                             crl_sign=cert_sign, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(dn(f"{name} CA")).issuer_name(dn(f"{name} CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(dn(f"{name} signer")).issuer_name(ca.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return TestChain(
        chain_pem=leaf.public_bytes(pem) + ca.public_bytes(pem),
        key_pem=leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ca_pem=ca.public_bytes(pem),
        leaf_pem=leaf.public_bytes(pem),
    )
