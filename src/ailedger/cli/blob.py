"""`ailedger blob ...`: IPFS content ids and CAR files; encrypted, erasure-coded storage on nodes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit_lines as _emit
from ailedger.errors import BadInputError, VerificationError

PROFILE_OPT = click.option("--profile", type=click.Choice(["unixfs-v1-2025", "kubo-v1-legacy"]),
                           default="unixfs-v1-2025", show_default=True,
                           help="UnixFS import profile (IPIP-499 unixfs-v1-2025, or kubo's legacy CIDv1 layout)")
JSON_OPT = click.option("--json", "as_json", is_flag=True, help="print JSON")
LEDGER_OPT = click.option("--ledger", "ledger_path", envvar="AILEDGER_LEDGER", default=None,
                          help="ledger directory (default: $AILEDGER_LEDGER)")
_IO = 4 << 20
S3_ENDPOINT_OPT = click.option("--s3-endpoint", "s3_endpoint", envvar="AWS_ENDPOINT_URL", multiple=True,
                               metavar="[BUCKET=]URL",
                               help="endpoint of s3:// targets (default: $AWS_ENDPOINT_URL, else AWS); BUCKET=URL for "
                                    "a bucket on another store (repeat); credentials come from the standard AWS "
                                    "variables and profiles")


def _endpoints(values: tuple[str, ...]) -> Any:
    from ailedger.blobs.s3 import parse_endpoints

    return parse_endpoints(values)

TARGET_OPT = click.option("--target", "targets", multiple=True, metavar="s3://BUCKET[/PREFIX]",
                          help="an S3 storage target (repeat: one erasure-coded shard per target; mixes with --nodes)")


def _open_ledger(path: str | None) -> Any:
    from ailedger.tlog.ledger import Ledger

    return Ledger.open(path)


def _identity(ledger: Any, name: str) -> Any:
    return ledger.identities.load(name, os.environ.get("AILEDGER_PASSPHRASE"))


def blob_cid(ledger: Any, ref: str) -> str:
    """What a blob command is given: the CID `blob put` printed (the encrypted object's), or the index of
    its ``blob.put`` entry (``#N`` or ``N``, also printed by `blob put`)."""
    from ailedger.encoding.refs import entry_ref
    from ailedger.errors import NotFoundError

    idx = entry_ref(ref, "cid", bare=True)
    if idx is None:
        return ref
    if idx >= ledger.size:
        raise NotFoundError(f"no entry #{idx} in this ledger ({ledger.size} entries)", field="cid")
    e = ledger.entry(idx)
    if e.type != "blob.put" or not isinstance(e.body.get("cid"), str):
        raise NotFoundError(f"entry #{idx} is a {e.type}, not a blob.put", field="cid")
    return str(e.body["cid"])


def _split(s: str | None) -> list[str]:
    return [x.strip() for x in (s or "").split(",") if x.strip()]


def import_file(path: str, profile: str, on_block: Any = None) -> Any:
    """Stream a file through the UnixFS importer; returns (root CID, size)."""
    from ailedger.blobs.unixfs import FileImporter

    imp = FileImporter(profile, keep_leaves=on_block is not None)
    with open(path, "rb") as f:
        while buf := f.read(_IO):
            blocks = imp.update(buf)
            if on_block:
                for b in blocks:
                    on_block(b)
    root, rest = imp.finish()
    if on_block:
        for b in rest:
            on_block(b)
    return root, imp.size


def write_car(path: str, out: str, profile: str) -> tuple[Any, int, int]:
    """Two passes: the root CID first (CAR v1 puts it in the header), then the blocks."""
    from ailedger.blobs.car import encode_header, encode_section

    root, size = import_file(path, profile)
    count = 0
    tmp = Path(out + ".part")
    try:
        with open(tmp, "wb") as f:
            f.write(encode_header([root]))

            def put(b: Any) -> None:
                nonlocal count
                f.write(encode_section(b))
                count += 1

            again, _ = import_file(path, profile, put)
        if again != root:
            raise BadInputError(f"{path} changed while it was being read", field="file")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return root, size, count


def register(main: click.Group) -> None:
    @main.group("blob")
    def blob() -> None:
        """Content ids (IPFS CIDv1), CAR files, and encrypted erasure-coded storage on nodes."""

    @blob.command("cid")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @PROFILE_OPT
    @JSON_OPT
    def cid_cmd(file: str, profile: str, as_json: bool) -> None:
        """Print the CID an IPFS importer gives FILE (UnixFS, raw leaves, balanced DAG)."""
        root, size = import_file(file, profile)
        _emit({"cid": str(root), "size": size, "profile": profile}, as_json, [str(root)])

    @blob.command("car")
    @click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
    @click.option("-o", "--output", help="CAR file to write (with FILE); file to extract to (with --import)")
    @click.option("--import", "car_in", type=click.Path(exists=True, dir_okay=False),
                  help="read this CAR file back, checking every block")
    @click.option("--max-size", "max_size", default=None, metavar="SIZE",
                  help="with --import -o: the largest file to extract (bytes, or 512M, 8G, 2T; default 8G, and "
                       "never more than the free space); a larger one is refused before anything is written")
    @PROFILE_OPT
    @JSON_OPT
    def car_cmd(file: str | None, output: str | None, car_in: str | None, max_size: str | None, profile: str,
                as_json: bool) -> None:
        """Write FILE's UnixFS DAG as a CAR v1 file (-o X.car), or check and read one (--import X.car)."""
        from ailedger.blobs.carfile import import_car, parse_size

        if car_in:
            if file:
                raise BadInputError("give either FILE -o X.car or --import X.car, not both", field="file")
            r = import_car(car_in, output, max_size=parse_size(max_size) if max_size is not None else None)
            lines = [f"{r['car']}: {r['blocks']} blocks, every block matches its CID",
                     *(f"root {x}" for x in r["roots"])]
            if output:
                lines.append(f"extracted {r['size']} bytes to {output}")
            _emit(r, as_json, lines)
            return
        if not file or not output:
            raise BadInputError("usage: ailedger blob car FILE -o X.car  |  ailedger blob car --import X.car",
                                field="file")
        root, size, count = write_car(file, output, profile)
        _emit({"cid": str(root), "car": output, "blocks": count, "size": size, "profile": profile}, as_json,
              [f"{root}", f"wrote {output}: {count} blocks"])

    @blob.command("put")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--nodes", default="", help="comma-separated storage node URLs (http://HOST:PORT)")
    @TARGET_OPT
    @S3_ENDPOINT_OPT
    @click.option("--k", "k", type=int, default=None,
                  help="shards needed to read back (default: from n, so that a third of the nodes, at least one, "
                       "may be lost: 3 nodes -> 2, 30 -> 20)")
    @click.option("--n", "n", type=int, default=None,
                  help="shards stored, one per distinct node (default: the number of --nodes)")
    @click.option("--readers", default="", help="comma-separated identities or did:keys allowed to read")
    @click.option("--as", "who", required=True, help="identity that owns and signs the record")
    @PROFILE_OPT
    @LEDGER_OPT
    @JSON_OPT
    def put_cmd(file: str, nodes: str, targets: tuple[str, ...], s3_endpoint: tuple[str, ...], k: int | None,
                n: int | None, readers: str, who: str, profile: str, ledger_path: str | None, as_json: bool) -> None:
        """Encrypt FILE, erasure-code it k-of-n across nodes, record it; print the blob's CID and entry #N.

        The CID is the encrypted object's (what `blob get`, `status`, `audit`, `grant` take, as does the
        entry #N); `blob cid FILE` prints the plaintext's CID, which the ledger does not record."""
        from ailedger.blobs.service import BlobService

        places = [*_split(nodes), *targets]
        if not places:
            raise BadInputError("give where to store the shards: --target s3://BUCKET (repeat) and/or "
                                "--nodes http://HOST:PORT,...", field="target")
        with _open_ledger(ledger_path) as ledger:
            r = BlobService(ledger, s3_endpoint=_endpoints(s3_endpoint)).put(file, places, _identity(ledger, who), k=k, n=n,
                                        readers=_split(readers), profile=profile)
        where = (f"entry #{r.index} (blob.put): {r.k}-of-{r.n} on {len(set(r.placement.values()))} nodes, "
                 f"{r.cipher_size} encrypted bytes")
        _emit(r.to_dict(), as_json, [r.cid, where,
                                     f"read it back with: ailedger blob get {r.cid} -o FILE --as READER",
                                     *(f"retried {x}" for x in r.retried)])

    @blob.command("get")
    @click.argument("cid")
    @click.option("-o", "--output", required=True, help="where to write the decrypted file")
    @click.option("--as", "who", default=None, help="a reader identity (not needed with --ciphertext)")
    @click.option("--ciphertext", is_flag=True,
                  help="write the encrypted object itself (no key needed; checked against CID), e.g. for IPFS")
    @click.option("--timeout", type=float, default=30.0, show_default=True, help="per-node timeout (s)")
    @S3_ENDPOINT_OPT
    @LEDGER_OPT
    @JSON_OPT
    def get_cmd(cid: str, output: str, who: str | None, ciphertext: bool, timeout: float, s3_endpoint: tuple[str, ...],
                ledger_path: str | None, as_json: bool) -> None:
        """Fetch the first k good shards, decode, decrypt and check every byte; write FILE only if all hold."""
        from ailedger.blobs.service import BlobService

        with _open_ledger(ledger_path) as ledger:
            svc = BlobService(ledger, timeout=timeout, s3_endpoint=_endpoints(s3_endpoint))
            cid = blob_cid(ledger, cid)
            if ciphertext:
                r = svc.get_ciphertext(cid, output)
            elif not who:
                raise BadInputError("give --as READER (or --ciphertext for the encrypted bytes)", field="as")
            else:
                r = svc.get(cid, output, _identity(ledger, who))
        for f in r.failures:
            click.echo(f"note: {f}", err=True)
        if ciphertext:
            _emit(r.to_dict(), as_json, [f"{output}: {r.size} encrypted bytes, CID {r.cid} verified",
                                         f"shards used {r.shards_used}"])
            return
        _emit(r.to_dict(), as_json, [f"{output}: {r.size} bytes, verified",
                                     f"plaintext cid {r.plaintext_cid}", f"shards used {r.shards_used}"])

    @blob.command("status")
    @click.argument("cid")
    @LEDGER_OPT
    @JSON_OPT
    def status_cmd(cid: str, ledger_path: str | None, as_json: bool) -> None:
        """What the ledger says about CID: coding, placement, readers."""
        from ailedger.blobs.service import BlobService

        with _open_ledger(ledger_path) as ledger:
            st = BlobService(ledger).state(blob_cid(ledger, cid))
        d = st.to_dict()
        _emit(d, as_json, [f"{st.cid}  owner {st.owner}",
                           f"{st.coding.k}-of-{st.coding.n}, {st.plain_size} bytes, records {st.history}",
                           *(f"reader {r}" for r in st.reader_dids),
                           *(f"shard {s['i']}: {s['node']}" for s in d["shards"])])

    @blob.command("audit")
    @click.argument("cid")
    @click.option("--challenges", type=int, default=3, show_default=True, help="random segments per shard")
    @S3_ENDPOINT_OPT
    @LEDGER_OPT
    @JSON_OPT
    def audit_cmd(cid: str, challenges: int, s3_endpoint: tuple[str, ...], ledger_path: str | None, as_json: bool) -> None:
        """Proof of storage: challenge every node for random segments, check Merkle proofs (exit 1 if any fail)."""
        from ailedger.blobs.service import BlobService

        with _open_ledger(ledger_path) as ledger:
            cid = blob_cid(ledger, cid)
            rep = BlobService(ledger, timeout=10, s3_endpoint=_endpoints(s3_endpoint)).audit(cid, challenges)
        bad = sorted(i for i, r in rep.items() if not r["ok"])
        _emit({"cid": cid, "shards": {str(i): r for i, r in sorted(rep.items())}, "failed": bad}, as_json,
              [f"shard {i}: {'ok' if r['ok'] else 'FAILED ' + r['error']} ({r['node']})" for i, r in sorted(rep.items())])
        if bad:
            raise VerificationError(f"{len(bad)} of {len(rep)} shards failed their storage challenge",
                                    expected="all shards prove", found=bad)

    @blob.command("repair")
    @click.argument("cid")
    @click.option("--nodes", default="", help="extra storage nodes to place rebuilt shards on")
    @TARGET_OPT
    @S3_ENDPOINT_OPT
    @click.option("--as", "who", required=True, help="identity that signs the repair record (no key needed)")
    @LEDGER_OPT
    @JSON_OPT
    def repair_cmd(cid: str, nodes: str, targets: tuple[str, ...], s3_endpoint: tuple[str, ...], who: str,
                   ledger_path: str | None, as_json: bool) -> None:
        """Find shards whose nodes vanished or fail challenges, rebuild them from k others, re-place them."""
        from ailedger.blobs.service import BlobService

        with _open_ledger(ledger_path) as ledger:
            r = BlobService(ledger, s3_endpoint=_endpoints(s3_endpoint)).repair(blob_cid(ledger, cid), _identity(ledger, who),
                                                                    [*_split(nodes), *targets])
        lines = [f"{len(r.healthy)} shards healthy"]
        lines += [f"rebuilt shard {i} on {u}" for i, u in sorted(r.rebuilt.items())] or ["nothing to repair"]
        if r.index is not None:
            lines.append(f"entry #{r.index} (blob.repair)")
        _emit(r.to_dict(), as_json, lines)

    def _readers(cid: str, who: str, ledger_path: str | None, as_json: bool, add: list[str],
                 rm: list[str]) -> None:
        from ailedger.blobs.service import BlobService

        with _open_ledger(ledger_path) as ledger:
            cid = blob_cid(ledger, cid)
            idx, readers = BlobService(ledger).set_readers(cid, _identity(ledger, who), add=add, remove_=rm)
        _emit({"cid": cid, "index": idx, "readers": readers}, as_json,
              [f"entry #{idx} (blob.readers)", *(f"reader {r}" for r in readers)])

    @blob.command("revoke")
    @click.argument("cid")
    @click.argument("readers", nargs=-1, required=True)
    @click.option("--as", "who", required=True, help="the blob's owner")
    @click.option("--rotate", is_flag=True,
                  help="also re-encrypt under a fresh key as a new blob and delete the old shards")
    @click.option("--nodes", default="", help="with --rotate: nodes for the new blob (default: the old ones)")
    @LEDGER_OPT
    @JSON_OPT
    def revoke_cmd(cid: str, readers: tuple[str, ...], who: str, rotate: bool, nodes: str,
                   ledger_path: str | None, as_json: bool) -> None:
        """Remove readers: the object key is re-wrapped for the remaining ones; with --rotate the object is
        re-encrypted under a new key (new CID) and the old shards are deleted (see docs/storage.md)."""
        if not rotate:
            _readers(cid, who, ledger_path, as_json, [], list(readers))
            return
        from ailedger.blobs.service import BlobService

        with _open_ledger(ledger_path) as ledger:
            r = BlobService(ledger).rotate(blob_cid(ledger, cid), _identity(ledger, who), remove_=list(readers),
                                           nodes=_split(nodes))
        _emit(r, as_json, [r["new"],
                           f"re-encrypted {r['old']} as {r['new']} (entry #{r['index']})",
                           f"{r['deleted']} old shards deleted", *(f"not deleted: {x}" for x in r["not_deleted"])])

    @blob.command("grant")
    @click.argument("cid")
    @click.argument("readers", nargs=-1, required=True)
    @click.option("--as", "who", required=True, help="the blob's owner")
    @LEDGER_OPT
    @JSON_OPT
    def grant_cmd(cid: str, readers: tuple[str, ...], who: str, ledger_path: str | None, as_json: bool) -> None:
        """Add readers (identity names or did:keys)."""
        _readers(cid, who, ledger_path, as_json, list(readers), [])

