"""`ailedger dataset ...`: commit a dataset's records as a sparse Merkle root, prove membership
or absence of a candidate record, and verify such proofs offline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ailedger.cli.model import (
    emit,
    json_option,
    ledger_option,
    load_identity,
    open_ledger,
    show_progress,
    vkey_text,
)
from ailedger.encoding.canonical import parse_json
from ailedger.errors import BadInputError, VerificationError


def _sources(path: str | None, license_: str | None, url: str | None, consent: str | None,
             cite: str | None, collection: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if path:
        obj = parse_json(Path(path).read_bytes(), what=path)
        out = obj if isinstance(obj, list) else [obj]
        if not all(isinstance(o, dict) for o in out):
            raise BadInputError(f"{path} must hold a JSON object or a list of objects", field="sources")
    common = {k: v for k, v in (("license", license_), ("url", url), ("consent", consent), ("citeAs", cite),
                                ("rai:dataCollection", collection)) if v}
    if common:
        out = [{**o, **common} for o in out] if out else [common]
    return out


def _secret(path: str, create: bool) -> bytes:
    import os
    import secrets

    p = Path(path)
    if not p.exists():
        if not create:
            raise BadInputError(f"secret file {path} does not exist", field="secret")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, secrets.token_bytes(32))
        os.close(fd)
    data = p.read_bytes()
    if len(data) < 16:
        raise BadInputError(f"secret file {path} holds fewer than 16 bytes", field="secret")
    return data


def candidate_bytes(candidate: str | None, record: str | None) -> bytes:
    """The candidate record: a file's bytes, or ``--record TEXT`` (a CSV line, a JSON text) as UTF-8."""
    if (candidate is None) == (record is None):
        raise BadInputError("give the candidate as a FILE or as --record TEXT (one of them)", field="candidate")
    if record is not None:
        return record.encode("utf-8")
    return Path(str(candidate)).read_bytes()


def verify_proof_command(proof_file: str, candidate: str | None, vkey: str | None, as_json: bool,
                         record: str | None = None) -> None:
    """Shared by `dataset verify` and (through verify_dataset_proof_file) the lead's `verify`."""
    from ailedger.provenance import verify_dataset_proof_file

    cand = candidate_bytes(candidate, record)
    try:
        rep = verify_dataset_proof_file(Path(proof_file).read_bytes(), cand, vkey_text(vkey))
    except VerificationError as e:
        emit({"ok": False, "error": e.to_dict()}, as_json, f"FAILED: {e.message}")
        sys.exit(1)
    emit(rep, as_json, rep["summary"])


def _s3_paths(paths: tuple[str, ...], endpoint: str | None) -> tuple[str, ...]:
    """``s3://`` PATHS carrying the endpoint (given or from the environment) to every reader."""
    from ailedger.provenance.s3input import S3Path, is_s3, parse

    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise BadInputError(f"--s3-endpoint {endpoint!r}: give an http:// or https:// URL", field="s3_endpoint")
    if endpoint is not None and not any(is_s3(p) for p in paths):
        raise BadInputError("--s3-endpoint is for s3:// PATHS; none was given", field="s3_endpoint")
    out = []
    for p in paths:
        if is_s3(p):
            parse(p)
            p = S3Path(p, endpoint)
        out.append(p)
    return tuple(out)


def register(main: click.Group) -> None:
    @main.group("dataset")
    def dataset() -> None:
        """Dataset commitments: was this record in the training set? (membership and absence proofs)"""

    @dataset.command("commit")
    @click.argument("paths", nargs=-1, required=False)
    @click.option("--name", required=True, help="Dataset name.")
    @click.option("--as", "identity", required=True, help="Identity that signs the commitment.")
    @click.option("--description", default=None)
    @click.option("--license", "license_", default=None, help="Licence of the source(s) (SPDX id or URL).")
    @click.option("--source-url", default=None, help="Where the source came from.")
    @click.option("--consent", default=None, help="Consent basis for the source(s).")
    @click.option("--cite-as", default=None)
    @click.option("--data-collection", default=None, help="Croissant rai:dataCollection text.")
    @click.option("--sources", "sources_file", default=None,
                  help="JSON file: one object per PATH with Croissant field names (license, url, consent, ...).")
    @click.option("--private", is_flag=True, help="Salt leaves with a curator secret (HMAC): only the curator can "
                  "answer queries.")
    @click.option("--from-shard", "shards", multiple=True, help="Shard made by `dataset hash-shard` (repeatable), "
                  "instead of PATHS.")
    @click.option("--secret-file", default=None, help="Curator secret for --private (made if missing, mode 0600).")
    @click.option("--workers", type=int, default=None, help="Hashing processes (default: all cores); with --engine "
                  "dask and no --scheduler, the workers of the local Dask cluster started for this commit.")
    @click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                  help="Where shards are hashed: a process pool here, or Dask workers (docs/provenance.md).")
    @click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                  help="With --engine dask: a running Dask scheduler (default: a LocalCluster started here).")
    @click.option("--follow-symlinks", is_flag=True)
    @click.option("--s3-endpoint", default=None, metavar="URL",
                  help="Endpoint of s3:// PATHS (default: $AWS_ENDPOINT_URL, else AWS); credentials come from the "
                       "standard AWS variables and profiles, on this host and on every Dask worker.")
    @click.option("--partitions-log2", type=click.IntRange(0, 16), default=None,
                  help="log2 of the partition (and index shard) count; default from the input size (~16 MiB of "
                       "keys per build task), at most 16 and what the open-file limit allows (each hashing "
                       "process holds 2^P files open).")
    @click.option("--supersedes", default=None, metavar="REF",
                  help="Commit a new version of an existing dataset: REF is its name (or #INDEX / root of its "
                       "current version). Only the identity that signed the original commit may do this.")
    @ledger_option
    @json_option
    def dataset_commit(paths: tuple[str, ...], name: str, identity: str, description: str | None,
                       license_: str | None, source_url: str | None, consent: str | None, cite_as: str | None,
                       data_collection: str | None, sources_file: str | None, private: bool,
                       shards: tuple[str, ...], secret_file: str | None, workers: int | None, engine: str,
                       scheduler: str | None, follow_symlinks: bool, s3_endpoint: str | None,
                       partitions_log2: int | None, supersedes: str | None, ledger_path: str | None,
                       as_json: bool) -> None:
        """Commit the records of PATHS (folders of files, .jsonl, .csv, .parquet; local, or on S3 as
        s3://BUCKET/KEY.jsonl or s3://BUCKET/PREFIX for a folder) as one root.

        A name already committed is refused unless --supersedes names its current version."""
        from ailedger.provenance import commit_dataset

        paths = _s3_paths(paths, s3_endpoint)
        meta = _sources(sources_file, license_, source_url, consent, cite_as, data_collection)
        if scheduler and engine != "dask":
            raise BadInputError("--scheduler needs --engine dask", field="scheduler")
        if partitions_log2 is not None and shards:
            raise BadInputError("--partitions-log2 is set by the shards (hash-shard --partitions-log2)",
                                field="partitions_log2")
        if engine == "dask" and shards:
            raise BadInputError("--engine dask hashes PATHS; shards made by hash-shard are already hashed",
                                field="engine")
        if workers is not None and workers < 1:
            raise BadInputError("--workers must be at least 1", field="workers")
        secret = _secret(secret_file, create=private and not shards) if secret_file else None
        with open_ledger(ledger_path) as ledger:
            ident = load_identity(ledger, identity)
            if engine == "dask":
                from ailedger.provenance.distributed import DaskEngine

                with DaskEngine(scheduler, workers) as eng:
                    res = commit_dataset(ledger, list(paths), name, ident, source_meta=meta,
                                         description=description, private=private, workers=workers,
                                         progress=show_progress(as_json), follow_symlinks=follow_symlinks,
                                         secret=secret, supersedes=supersedes, builder=eng.build_index,
                                         partitions_log2=partitions_log2)
            else:
                res = commit_dataset(ledger, list(paths), name, ident, source_meta=meta, description=description,
                                     private=private, workers=workers, progress=show_progress(as_json),
                                     follow_symlinks=follow_symlinks, shards=list(shards), secret=secret,
                                     supersedes=supersedes, partitions_log2=partitions_log2)
        sup = res.get("supersedes")
        emit(res, as_json,
             f"committed dataset {name} as entry #{res['index']}: {res['records']} records "
             f"({res['duplicates']} duplicates), root {res['root']}\n"
             + (f"new version: supersedes #{sup['index']} (root {sup['root']})\n" if sup else "")
             + f"normal forms: {', '.join(res['forms'])}\n"
             f"hashed {res['records_in']} records in {res['seconds_hash']:.2f}s, built the index in "
             f"{res['seconds_build']:.2f}s"
             + (f"\nengine: dask, {res['units']} shards on {res['workers']} workers" if engine == "dask" else ""))

    @dataset.command("hash-shard")
    @click.argument("paths", nargs=-1, required=True)
    @click.option("-o", "--output", required=True, help="New shard directory.")
    @click.option("--partitions-log2", type=int, required=True,
                  help="log2 of the partition count; every shard of one dataset must use the same.")
    @click.option("--secret-file", default=None, help="Curator secret for a private dataset (made if missing).")
    @click.option("--workers", type=int, default=None)
    @click.option("--follow-symlinks", is_flag=True)
    @click.option("--s3-endpoint", default=None, metavar="URL",
                  help="Endpoint of s3:// PATHS (default: $AWS_ENDPOINT_URL, else AWS).")
    @json_option
    def dataset_hash_shard(paths: tuple[str, ...], output: str, partitions_log2: int, secret_file: str | None,
                           workers: int | None, follow_symlinks: bool, s3_endpoint: str | None, as_json: bool) -> None:
        """Hash part of a dataset here (no ledger needed); commit the shards elsewhere with --from-shard.
        PATHS may be on S3 (s3://BUCKET/KEY or s3://BUCKET/PREFIX), as for `dataset commit`."""
        from ailedger.provenance.datasets import hash_shard

        paths = _s3_paths(paths, s3_endpoint)
        secret = _secret(secret_file, create=True) if secret_file else None
        res = hash_shard(list(paths), Path(output), partitions_log2=partitions_log2, secret=secret,
                         workers=workers, progress=show_progress(as_json), follow_symlinks=follow_symlinks)
        emit(res, as_json, f"hashed {res['records_in']} records into shard {output} "
                           f"({1 << res['P']} partitions, {res['seconds']:.2f}s)")

    @dataset.command("prove")
    @click.argument("dataset_ref")
    @click.argument("candidate", required=False, type=click.Path(dir_okay=False, exists=True))
    @click.option("--record", default=None, metavar="TEXT",
                  help="The candidate as text instead of a FILE: a CSV line (under the committed header) or a JSON "
                       "object / line.")
    @click.option("-o", "--output", required=True, help="Proof file to write.")
    @ledger_option
    @json_option
    def dataset_prove(dataset_ref: str, candidate: str | None, record: str | None, output: str,
                      ledger_path: str | None, as_json: bool) -> None:
        """Prove CANDIDATE is in DATASET_REF, or that it is not (whichever holds).

        The candidate is read under every normal form the commitment states (see docs/provenance.md):
        membership needs one reading in the set, absence is proved for every reading."""
        from ailedger.provenance import prove_dataset

        cand = candidate_bytes(candidate, record)
        with open_ledger(ledger_path) as ledger:
            data, info = prove_dataset(ledger, dataset_ref, cand)
        out = Path(output)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(out)
        info["output"] = output
        what = "membership" if info["result"] == "member" else "absence"
        lines = [(f"wrote {what} proof {output} ({info['file_bytes']} bytes; sparse Merkle proof "
                  f"{info['smt_proof_bytes']} bytes, made in {info['prove_ms']} ms)")]
        for r in info["readings"]:
            lines.append(f"{r['result']} under normal form {', '.join(r['forms'])} (key = {r['key']})")
        if info.get("superseded_by") is not None:
            lines.append(f"note: entry #{info['index']} was superseded by #{info['superseded_by']}; the current "
                         f"version is #{info['current_version']}")
        emit(info, as_json, "\n".join(lines))

    @dataset.command("verify")
    @click.argument("proof_file", type=click.Path(dir_okay=False, exists=True))
    @click.option("--candidate", default=None, type=click.Path(dir_okay=False, exists=True),
                  help="The candidate record (a file).")
    @click.option("--record", default=None, metavar="TEXT", help="The candidate as text (a CSV line, a JSON text).")
    @click.option("--vkey", default=None, help="Log verifier key, inline or a file (default: the ledger's).")
    @ledger_option
    @json_option
    def dataset_verify(proof_file: str, candidate: str | None, record: str | None, vkey: str | None,
                       ledger_path: str | None, as_json: bool) -> None:
        """Check a dataset proof offline, holding only the candidate, the proof and the log's key."""
        from ailedger.cli._common import log_verifier

        verify_proof_command(proof_file, candidate, log_verifier(vkey, ledger_path).vkey, as_json, record=record)

    @dataset.command("show")
    @click.argument("dataset_ref")
    @ledger_option
    @json_option
    def dataset_show(dataset_ref: str, ledger_path: str | None, as_json: bool) -> None:
        """A dataset's commitment: root, sources, rule, owner, and every version of its name."""
        from ailedger.provenance.datasets import dataset_status

        with open_ledger(ledger_path) as ledger:
            st = dataset_status(ledger, dataset_ref)
        b, rec = st["body"], st["record"]
        lines = [f"dataset {b['name']}: entry #{rec['index']}, {b.get('records')} records, root {b.get('root')}",
                 (f"signed by {rec['signer']} at {rec['time']} (signature valid, inclusion verified at "
                  f"checkpoint size {rec['checkpoint']['size']})"),
                 f"owner: {st['owner']} (signed the original commit #{st['versions'][0]['index']})"]
        rule = b.get("rule")
        lines.append("rule: " + (f"key {rule['key']}, forms {', '.join(rule['forms'])}" if rule else
                                 "not recorded (entry made before rules were): implied by its sources"))
        for s in b.get("sources", []):
            extra = "".join(f", {k} {s[k]}" for k in ("form", "sha256") if k in s)
            lines.append(f"  source {s.get('name')}: {s.get('records')} records, {s.get('encodingFormat')}{extra}")
        for n, ver in enumerate(st["versions"], 1):
            mark = " <- this entry" if ver["index"] == rec["index"] else ""
            sup = f", supersedes #{ver['supersedes']['index']}" if ver.get("supersedes") else ""
            lines.append(f"version {n}: #{ver['index']} root {ver['root']} at {ver['time']}{sup}{mark}")
        if not st["current"]:
            cur = st["versions"][-1]
            lines.append(f"WARNING: entry #{rec['index']} is not the current version of {b['name']}: "
                         f"#{cur['index']} (root {cur['root']}) supersedes it")
        for r in st["rejected"]:
            lines.append(f"not a version: #{r['index']}: {r['reason']}")
        emit(st, as_json, "\n".join(lines))

    @dataset.command("croissant")
    @click.argument("dataset_ref")
    @click.option("-o", "--output", required=True, help="JSON-LD file to write.")
    @click.option("--url", default=None, help="The dataset's landing page (default: the sources' url).")
    @click.option("--base-url", default=None, help="Prefix of each file's contentUrl (default: its bare name).")
    @ledger_option
    @json_option
    def dataset_croissant(dataset_ref: str, output: str, url: str | None, base_url: str | None,
                          ledger_path: str | None, as_json: bool) -> None:
        """Write Croissant 1.0 (MLCommons) JSON-LD metadata for a committed dataset."""
        import json

        from ailedger.provenance.croissant import croissant_metadata

        with open_ledger(ledger_path) as ledger:
            doc = croissant_metadata(ledger, dataset_ref, url=url, base_url=base_url)
        out = Path(output)
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(out)
        c = doc["ailedger:commitment"]
        emit({"output": output, "name": doc["name"], "distribution": len(doc["distribution"]),
              "root": c["ailedger:root"], "index": c["ailedger:entryIndex"]}, as_json,
             f"wrote Croissant metadata {output} for dataset {doc['name']} (entry #{c['ailedger:entryIndex']}, "
             f"root {c['ailedger:root']}; {len(doc['distribution'])} distribution entries)")
