"""Store registered models and datasets as blobs, and fetch them back verified against their records.

push: the local copy is first checked against the ledger record (model manifest root, or dataset
root), so only what was registered is stored; it is packed as a deterministic tar (sorted paths,
mtime 0, uid/gid 0, regular files and folders only) and put as a blob; a ``blob.attach`` record
links the artifact's record index to the blob CID.

pull: the latest attached blob is fetched (every byte checked by the blob layer), unpacked with
tarfile's ``data`` filter into ``OUT.part``, re-hashed and compared with the record; only a match is
renamed to ``OUT``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.authority.service import attach_allowed
from ailedger.blobs.service import BlobService
from ailedger.errors import BadInputError, NotFoundError, VerificationError
from ailedger.provenance import find_dataset, find_model, verify_model
from ailedger.provenance.datasets import build_index

__all__ = ["attached_blob", "pack_tree", "pull_dataset", "pull_model", "push_dataset", "push_model"]

ATTACH = "blob.attach"


def _add_tree(tar: tarfile.TarFile, src: Path, arc: str) -> None:
    def info(name: str, isdir: bool, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE if isdir else tarfile.REGTYPE
        ti.mode = 0o755 if isdir else 0o644
        ti.mtime = 0
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        ti.size = size
        return ti

    if src.is_file():
        with open(src, "rb") as f:
            tar.addfile(info(arc, False, src.stat().st_size), f)
        return
    if not src.is_dir():
        raise BadInputError(f"{src} is neither a file nor a folder", field="path")
    tar.addfile(info(arc, True))
    for entry in sorted(os.listdir(src)):
        _add_tree(tar, src / entry, f"{arc}/{entry}")


def pack_tree(items: list[tuple[Path, str]], out: Path) -> None:
    """Deterministic tar of ``(path, name in archive)`` items."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path, arc in items:
            _add_tree(tar, path, arc)


def _unpack(tar_path: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    try:  # "r:": an uncompressed archive only (what push writes): a compressed one could expand without bound
        tar_cm = tarfile.open(tar_path, "r:")  # noqa: SIM115 - entered by the `with` below
    except tarfile.ReadError as exc:
        raise VerificationError(f"the stored copy is not an uncompressed tar archive ({exc})",
                                expected="uncompressed tar", found="something else") from None
    with tar_cm as tar:
        for m in tar.getmembers():
            if not (m.isfile() or m.isdir()):
                raise VerificationError(f"archive holds a {m.type!r} entry {m.name!r}; only files and folders "
                                        "are allowed", expected="file or folder", found=m.name)
        tar.extractall(dest, filter="data")


def _attach(ledger: Any, kind: str, name: str, record_index: int, cid: str, put_index: int, ident: Any) -> int:
    body = {"artifact": kind, "name": name, "record": record_index, "cid": cid, "put": put_index}
    res = ledger.append_record(ATTACH, body, ident, terms=[f"attach:{kind}:{record_index}"])
    return int(res.index)


def attached_blob(ledger: Any, kind: str, record_index: int) -> tuple[int, dict[str, Any]]:
    last = None
    for idx, e in ledger.find(type=ATTACH, term=f"attach:{kind}:{record_index}"):
        if e.body.get("record") == record_index and e.body.get("artifact") == kind \
                and attach_allowed(ledger, e) is None:  # only the record's owner attaches (docs/authority.md)
            last = (idx, dict(e.body))
    if last is None:
        raise NotFoundError(f"no stored copy of {kind} record #{record_index} (push it first)", field=kind)
    return last


def _matches(rep: dict[str, Any], e: Any) -> bool:
    """The re-hashed manifest must be *this* record's (verify_model also accepts other records)."""
    return bool(rep["ok"]) and rep.get("manifest_root") == e.body.get("manifest", {}).get("root")


def _spool(ledger: Any) -> Path:
    return Path(tempfile.mkdtemp(prefix="ailedger-artifact-"))


def push_model(ledger: Any, ref: str, directory: str, nodes: list[str], ident: Any, **put_kw: Any
               ) -> dict[str, Any]:
    idx, e = find_model(ledger, ref)
    rep = verify_model(ledger, directory, name=f"#{idx}")
    if not _matches(rep, e):
        raise VerificationError(f"{directory} is not model {ref} as registered in entry #{idx}; not stored",
                                expected=rep.get("expected_root"), found=rep.get("manifest_root"))
    spool = _spool(ledger)
    try:
        tar = spool / "model.tar"
        pack_tree([(Path(directory), "model")], tar)
        r = BlobService(ledger).put(tar, nodes, ident, **put_kw)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    att = _attach(ledger, "model", e.body.get("name", ref), idx, r.cid, r.index, ident)
    return {"model": e.body.get("name", ref), "record": idx, "cid": r.cid, "put_index": r.index,
            "attach_index": att, "manifest_root": rep["manifest_root"]}


@dataclass
class _Fetched:
    part: Path   # OUT.part: the unpacked copy, to check and then move into place
    spool: Path  # a scratch folder
    dest: Path   # OUT
    cid: str
    size: int


@contextmanager
def _fetch(ledger: Any, kind: str, idx: int, out: str, ident: Any) -> Iterator[_Fetched]:
    """The blob last attached to record ``idx`` (a ``kind``), fetched and unpacked into ``OUT.part`` for the
    caller to check and rename to ``OUT``; ``OUT.part`` and the scratch folder are removed whatever happens."""
    _, att = attached_blob(ledger, kind, idx)
    dest = Path(out)
    if dest.exists():
        raise BadInputError(f"{dest} already exists", field="output")
    part = dest.with_name(dest.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    spool = _spool(ledger)
    try:
        tar = spool / f"{kind}.tar"
        g = BlobService(ledger).get(att["cid"], tar, ident)
        _unpack(tar, part)
        yield _Fetched(part, spool, dest, att["cid"], g.size)
    finally:
        shutil.rmtree(part, ignore_errors=True)
        shutil.rmtree(spool, ignore_errors=True)


def pull_model(ledger: Any, ref: str, out: str, ident: Any) -> dict[str, Any]:
    idx, e = find_model(ledger, ref)
    with _fetch(ledger, "model", idx, out, ident) as f:
        rep = verify_model(ledger, f.part / "model", name=f"#{idx}")
        if not _matches(rep, e):
            raise VerificationError(f"fetched copy of model {ref} does not match entry #{idx}",
                                    expected=rep.get("expected_root"), found=rep.get("manifest_root"))
        os.replace(f.part / "model", f.dest)
    return {"model": e.body.get("name", ref), "record": idx, "cid": f.cid, "output": out,
            "manifest_root": rep["manifest_root"], "bytes": f.size, "verified": True}


def _dataset_root(paths: list[str], work: Path) -> str:
    info = build_index(paths, work / "index", private=False, workers=1)
    return str(info["root"])


def push_dataset(ledger: Any, ref: str, paths: list[str], nodes: list[str], ident: Any, **put_kw: Any
                 ) -> dict[str, Any]:
    idx, e = find_dataset(ledger, ref)
    names = [Path(p).name for p in paths]
    if len(set(names)) != len(names):
        raise BadInputError("dataset paths must have distinct base names", field="path")
    spool = _spool(ledger)
    try:
        root = _dataset_root(paths, spool)
        if root != e.body.get("root"):
            raise VerificationError(f"these paths are not dataset {ref} as committed in entry #{idx} "
                                    "(a private dataset cannot be checked this way); not stored",
                                    expected=e.body.get("root"), found=root)
        tar = spool / "dataset.tar"
        pack_tree([(Path(p), f"dataset/{n}") for p, n in zip(paths, names)], tar)
        r = BlobService(ledger).put(tar, nodes, ident, **put_kw)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    att = _attach(ledger, "dataset", e.body.get("name", ref), idx, r.cid, r.index, ident)
    return {"dataset": e.body.get("name", ref), "record": idx, "cid": r.cid, "put_index": r.index,
            "attach_index": att, "root": root, "paths": names}


def pull_dataset(ledger: Any, ref: str, out: str, ident: Any) -> dict[str, Any]:
    idx, e = find_dataset(ledger, ref)
    with _fetch(ledger, "dataset", idx, out, ident) as f:
        names = [s["name"] for s in e.body.get("sources", [])]
        got = sorted(os.listdir(f.part / "dataset"))
        if sorted(names) != got:
            raise VerificationError("fetched dataset holds other sources than the record",
                                    expected=sorted(names), found=got)
        root = _dataset_root([str(f.part / "dataset" / n) for n in names], f.spool)
        if root != e.body.get("root"):
            raise VerificationError(f"fetched copy of dataset {ref} does not match entry #{idx}",
                                    expected=e.body.get("root"), found=root)
        os.replace(f.part / "dataset", f.dest)
    return {"dataset": e.body.get("name", ref), "record": idx, "cid": f.cid, "output": out, "root": root,
            "bytes": f.size, "verified": True}


