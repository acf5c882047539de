"""Who may sign what, with effect: the authority rules as pure folds over ledger entries.

A signature says *who signed*; these rules say *who may*.  Every entry type that changes state derived
from the log has one rule here (the table is :data:`RULES`, written out in docs/authority.md).  The same
functions decide at ingest (an unauthorised entry is refused: :class:`NotAuthorisedError`, HTTP 403
``not_authorised``, nothing stored) and in every fold (an unauthorised entry that reached the log some
other way, an older log or another writer, is ignored and listed).

Pure: no I/O, no clock, no globals.  The folds take entries in log order:

* :class:`Keys` -- key rotation (``identity.rotate``: the old key hands its standing to a new key) and
  self-revocation (``identity.revoke``).  A *principal* is a chain of keys; only its current key acts.
* :class:`LogConfig` -- the log operator (the did:key of the log's own Ed25519 signing key, fixed when the
  ledger is created) and the founding key set it names in ``log.genesis``: who may found the DAO.
* :class:`ModelBook` -- model names: the first ``model.register`` of a name makes its signer the owner;
  later registrations by the owner are new versions, anyone else's are ignored; the owner's own
  ``model.revoke`` / ``model.suspend`` / ``model.reinstate`` (= ``model.unrevoke``).
* :func:`model_status` -- the one answer to "may this model be used?", combining the owner's ruling with
  the DAO's (an executed proposal, or the guardians' k-of-n suspension, folded in
  :mod:`ailedger.governance.state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.identity import did_from_public_key, public_key_from_did
from ailedger.errors import BadInputError, ConflictError, NotAuthorisedError
from ailedger.tlog.admission import TIME_SKEW_SECONDS

__all__ = [
    "GENESIS",
    "LOG_TYPES",
    "MODEL_TYPES",
    "RESERVED_TYPES",
    "RULES",
    "TIME_SKEW_SECONDS",
    "AuthorityState",
    "EntryLike",
    "Keys",
    "LogConfig",
    "ModelBook",
    "ModelStatus",
    "Ruling",
    "fl_update_statement",
    "model_name_of",
    "model_status",
    "operator_did",
]

# Every writer (HTTP, CLI, Ledger API) refuses an entry whose signed time is further than TIME_SKEW_SECONDS
# from its own clock, so the governance clock (signed entry times) runs at most this far ahead of real time.
# The kernel's writer applies it, so it is stated there (ailedger.tlog.admission).

GENESIS = "log.genesis"
LOG_TYPES = (GENESIS,)
MODEL_TYPES = ("model.register", "model.revoke", "model.suspend", "model.reinstate", "model.unrevoke")
RESERVED_TYPES = ("model.approve", "dataset.approve", "dataset.revoke")
"""DAO actions: they take effect only inside an executed ``gov.propose``; a top-level entry of these
types has no effect and is refused at ingest."""

_LIFT = ("model.reinstate", "model.unrevoke")
_RULING = {"model.revoke": "revoked", "model.suspend": "suspended"}


class EntryLike(Protocol):  # read-only members: a frozen SignedEntry fits
    @property
    def type(self) -> str: ...
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def signer(self) -> str: ...
    @property
    def time(self) -> str: ...


# -- the table (docs/authority.md is this, written out; a test keeps the two equal) -----------------------

RULES: dict[str, tuple[str, str]] = {
    # type: (who may sign it with effect, what it changes)
    "log.genesis": ("the log operator (the did:key of the log's signing key); the first one counts",
                    "names the founding key set (who may sign gov.init)"),
    "identity.register": ("the key itself (body.did == signer)", "makes the key a registered identity"),
    "identity.rotate": ("the current key of the principal (body.old == signer), to a fresh key",
                        "the new key takes over the principal's model names; the old key loses them"),
    "identity.revoke": ("the key itself (body.did == signer)", "the key loses all standing; later entries refused"),
    "model.register": (("anyone for a new name; for an existing name only its owner (first registrant, or "
                        "the key it rotated to)"), "creates the name (owner = signer) or adds a version"),
    "model.revoke": ("the model's owner", "model revoked by its owner (only the owner lifts it)"),
    "model.suspend": ("the model's owner", "model suspended by its owner (only the owner lifts it)"),
    "model.reinstate": ("the model's owner", "lifts the owner's own revocation or suspension"),
    "model.unrevoke": ("the model's owner", "same as model.reinstate"),
    "model.approve": ("an executed DAO proposal only (action)", "model approved by proposal N"),
    "dataset.approve": ("an executed DAO proposal only (action)", "dataset approved by proposal N"),
    "dataset.revoke": ("an executed DAO proposal only (action)", "dataset revoked by proposal N"),
    "gov.init": ("the log operator or a founder named in log.genesis; once", "founds the DAO; signer = minter"),
    "gov.mint": ("the DAO minter", "token balances and supply"),
    "gov.reputation": ("the DAO minter", "reputation points"),
    "gov.transfer": ("a token holder (up to its balance)", "balances and delegated votes"),
    "gov.delegate": ("a key (its own votes)", "delegated votes"),
    "gov.propose": ("a key with voting power >= proposal_threshold", "a new proposal"),
    "gov.vote": ("a key with weight > 0 at the proposal's snapshot, once", "the proposal's tally"),
    "gov.queue": ("anyone (a keeper), once the proposal succeeded", "starts the timelock"),
    "gov.execute": ("anyone (a keeper), once the timelock passed", "runs the proposal's actions"),
    "gov.cancel": ("the proposer, while pending", "cancels the proposal"),
    "gov.guardian.suspend": ("anyone carrying k-of-n guardian cosignatures", "model suspended by guardians"),
    "stake.claim": ("a reputation holder (free reputation >= stake)", "locks a stake on a claim"),
    "stake.dispute": ("a reputation holder other than the staker", "opens a dispute, locks a bond"),
    "stake.vote": ("a reputation holder or drawn juror, not a party", "the dispute's tally"),
    "stake.resolve": ("anyone (a keeper), after the dispute period", "fixes the dispute's winner"),
    "stake.slash": ("anyone (a keeper), after resolution", "moves the loser's stake"),
    "stake.release": ("anyone (a keeper), after an undisputed window", "unlocks the stake"),
    "dataset.commit": (("anyone for a new name; for an existing name only its original committer (see "
                        "dataset_owner)"), "creates the name or a new version"),
    "dataset.source-removal": ("the dataset's original committer (see dataset_owner)",
                               "links a commitment to its successor without a source"),
    "dataset.screening": ("anyone (an attestation by its signer)", "nothing shared: a report shown with its signer"),
    "content.register": ("anyone (a claim by its signer)", "adds a registration to the content index"),
    "blob.put": ("anyone", "a new blob owned by the signer"),
    "blob.readers": ("the blob's owner (signer of its blob.put)", "the blob's reader set"),
    "blob.supersede": ("the blob's owner (signer of its blob.put)", "marks the blob superseded"),
    "blob.repair": ("anyone (shards are checked by hash)", "adds shard locations"),
    "blob.attach": ("the owner of the artifact record it attaches to", "the stored copy of a model/dataset"),
    "inference.batch": ("anyone (a statement by its signer, the operator)", "nothing shared: receipts name the operator"),
    "inference.erasure": ("anyone (a statement by its signer, the operator)", "nothing shared: the operator's report"),
    "fl.run": ("anyone (its signer is the run's server)", "opens a federated run: its server and enrolled clients"),
    "fl.round": (("the run's server (signer of its fl.run); every update in it signed by an enrolled, "
                  "registered, unremoved client"), "a round of the run: the models before and after"),
    "fl.remove": ("the run's server (signer of its fl.run)", "removes a client from the run; names the rounds"),
    "subnet.create": ("anyone, for a new subnet name (the signer owns it)", "a subnet, its task and parameters"),
    "subnet.params": ("the subnet's owner", "the subnet's parameters from the next epoch that starts"),
    "subnet.register": (("the registrant itself (the signer), once per subnet; a miner with miner_min_stake "
                         "locked on the subnet"), "a miner or validator uid"),
    "subnet.commit": (("a registered validator with reputation locked on the subnet (stake.claim kind subnet, "
                       "lock lasting past the reveal window), once per epoch, dated in that epoch"),
                      "the validator's sealed weights and its stake for the epoch"),
    "subnet.reveal": ("the validator that committed, in the following epoch, opening its commitment",
                      "the validator's weights for the epoch"),
    "subnet.epoch": (("anyone (a keeper), once per epoch in order, after its reveal window; its result must "
                      "equal the fold's recomputation"), "bonds and payouts of the epoch"),
    "contract.audit": ("anyone (an attestation by its signer)",
                       "nothing shared: an audit of a contract source, shown with its signer"),
    "subnet.pool": ("the subnet's owner, once, opening the pool commitment of its subnet.create",
                    "the revealed evaluation pool that reveals' scores are audited against"),
    "model.zk": (("the model's owner, for an effective registration of it, while the model is usable "
                  "(authority.service.zk_setup_allowed)"), "binds a ZK circuit and verifying key to the model"),
    "inference.zk": ("anyone (a statement by its signer, the operator)",
                     "nothing shared: names the digest of a proof of a logged call"),
    "eval.commit": ("anyone (a commitment by its signer)", "nothing shared: a sealed commitment with a reveal deadline"),
    "eval.reveal": (("the committer of the eval.commit it opens (authority.service.eval_reveal_allowed)"),
                    "opens the commitment (judged by eval verify: on time, matching)"),
    "mpc.commit": ("anyone (a statement by its signer, a party of an MPC run)",
                   "nothing shared: a party's commitment; private.mpc.audit_run checks a run against its model"),
    "compute.job": ("anyone (the client; the first for its contract and job id)", "a job: spec, roots, price, referee"),
    "compute.bid": ("anyone, on a job this log holds (a statement by the bidder)", "nothing shared: a bid the client may accept"),
    "compute.accept": ("the job's client (signer of its compute.job)", "the job's accepted provider"),
    "compute.result": ("the job's accepted provider; once", "the job's step roots, trace root and final root"),
    "compute.challenge": ("anyone, on a job this log holds (a statement)", "nothing shared: the contract holds the dispute"),
    "compute.verdict": ("the referee named in the job's compute.job; once", "the one-step verdict of the dispute"),
    "compute.settle": ("anyone, on a job this log holds (a keeper's statement)", "nothing shared: the contract pays"),
    "agent.action": (("anyone, well formed, naming an effective model registration logged before it (usable "
                      "when logged); the first per (chain, agent address, nonce) and per intent id counts"),
                     "the agent's logged decisions that `agent audit` matches against the chain"),
    "dao.advice": (("anyone, naming an effective model registration whose manifest root is the analyst's and "
                    "that is usable when logged, on a proposal this log holds (a statement: no rule reads it)"),
                   "nothing shared: the advice shown beside the proposal; votes and execution never read it"),
    "rwa.series": ("anyone (a statement by its signer: the price series an agent decides from)",
                   "nothing shared: the generator, seed and digest that the vault agent's decisions name"),
    "agent.finding": ("anyone (a statement by its signer, the detector)", "nothing shared: a finding shown with its signer"),
    "agent.backtest.plan": ("anyone (a commitment by its signer), a plan whose plan_sha256 is its digest",
                            "the configurations the signer tried in the study (counted once per plan digest)"),
    "agent.backtest.result": ("the signer of the plan it names, once per plan, after the plan, naming its digest",
                              "the study's reported score (deflated by the trials on the ledger)"),
    "inference.extraction-alarm": (("the operator key of the gateway that reads it, with evidence that holds "
                                    "(others': statements, no effect)"),
                                   ("the identity's budget there: halved per alarm in force, suspended at 2 "
                                    "(inference.extraction.standing)")),
    "epcis.event": ("anyone (a statement by its signer: the party that captured the event)",
                    "adds a GS1 EPCIS event, found by its CBV event hash, to traces and recalls"),
    "epcis.allocation": ("anyone (a statement by its signer, the planner)",
                         "nothing shared: a relief allocation plan with its logged inputs, recomputable"),
}


def fl_update_statement(run: int, round_: int, digest: str, n: int, base: str) -> bytes:
    """The bytes a federated client signs for its update: the run (index of its ``fl.run``), the round, the
    digest of the serialized parameters, the sample count and the global model's root it started from.  A
    signature for one round, run or base model does not verify for another."""
    return canonical_json({"type": "fl.update", "run": run, "round": round_, "digest": digest, "n": n,
                           "base": base})


def operator_did(log_public_key: bytes) -> str:
    """The log operator's did:key: the log's own Ed25519 signing key, fixed when the ledger is created."""
    return did_from_public_key(log_public_key)


def _did(v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise BadInputError(f"{key} must be a did:key", field=key)
    public_key_from_did(v)
    return v


def _refuse(e: EntryLike, why: str) -> NotAuthorisedError:
    return NotAuthorisedError(f"{e.type} by {e.signer} has no effect: {why}", field="signer", type=e.type)


# -- keys: rotation and revocation --------------------------------------------------------------------------

class Keys:
    """Principals as chains of keys.  ``identity.rotate {old, new}`` signed by ``old`` hands old's standing to
    ``new`` (old is retired); ``identity.revoke {did}`` signed by ``did`` ends that key's standing."""

    def __init__(self) -> None:
        self.root: dict[str, str] = {}        # rotated-in key -> its principal (the first key of the chain)
        self.retired: dict[str, int] = {}     # key -> index of the rotation that retired it
        self.revoked: dict[str, int] = {}     # key -> index of its self-revocation
        self.successor: dict[str, str] = {}

    def principal(self, did: str) -> str:
        return self.root.get(did, did)

    def current(self, did: str) -> str:
        seen = 0
        while did in self.successor and seen < 10000:
            did = self.successor[did]
            seen += 1
        return did

    def can_act(self, did: str) -> bool:
        return did not in self.retired and did not in self.revoked

    def acts_for(self, did: str, principal: str) -> bool:
        """Does a key ``did`` speak for ``principal`` now (it is the principal's current, unrevoked key)?"""
        return self.can_act(did) and self.principal(did) == principal

    def why_not(self, did: str, principal: str) -> str:
        if did in self.revoked:
            return f"key {did} was revoked at entry {self.revoked[did]}"
        if did in self.retired:
            return f"key {did} was rotated away at entry {self.retired[did]}"
        cur = self.current(principal)
        return f"it belongs to {principal}" + (f" (now acting with key {cur})" if cur != principal else "")

    def check(self, index: int, e: EntryLike) -> None:
        b = e.body
        if e.type == "identity.register":
            if b.get("did") != e.signer:
                raise _refuse(e, "an identity registration must be self-signed (body.did == signer)")
        elif e.type == "identity.revoke":
            if b.get("did") != e.signer:
                raise _refuse(e, "only a key may revoke itself (body.did == signer)")
        elif e.type == "identity.rotate":
            if b.get("old") != e.signer:
                raise _refuse(e, "a rotation is signed by the old key (body.old == signer)")
            if not self.can_act(e.signer):
                raise _refuse(e, self.why_not(e.signer, self.principal(e.signer)))
            new = _did(b.get("new"), "new")
            if new == e.signer or new in self.root or new in self.retired or new in self.revoked \
                    or new in self.successor:
                raise ConflictError(f"identity.rotate: {new} is not a fresh key", field="new")

    def apply(self, index: int, e: EntryLike) -> None:
        self.check(index, e)
        if e.type == "identity.revoke":
            self.revoked.setdefault(e.signer, index)
        elif e.type == "identity.rotate":
            new = e.body["new"]
            self.root[new] = self.principal(e.signer)
            self.retired[e.signer] = index
            self.successor[e.signer] = new


# -- the log's own configuration: who founds the DAO -----------------------------------------------------

class LogConfig:
    """The operator (fixed at creation: the log key) and the founding key set of ``log.genesis``.

    Without a ``log.genesis`` (an older ledger, or one whose operator named nobody) only the operator may
    found the DAO.  The first operator-signed ``log.genesis`` counts; later ones are ignored."""

    def __init__(self, operator: str | None) -> None:
        self.operator = operator
        self.genesis: int | None = None
        self.founders: tuple[str, ...] = ()

    def may_found(self, did: str) -> bool:
        return did == self.operator or did in self.founders

    def founding_rule(self) -> str:
        if self.operator is None:
            return "no log operator is known to this fold, so nobody may"
        if not self.founders:
            return f"only the log operator {self.operator} may (no log.genesis names founders)"
        return (f"only the log operator {self.operator} or a founder named in log.genesis (entry {self.genesis}) "
                f"may: {', '.join(self.founders)}")

    def check(self, index: int, e: EntryLike) -> None:
        if self.operator is None or e.signer != self.operator:
            raise _refuse(e, f"log.* entries are signed by the log operator {self.operator}")
        if e.type == GENESIS:
            if self.genesis is not None:
                raise ConflictError(f"this log already has its genesis (entry {self.genesis})", field="type")
            fs = e.body.get("founders", [])
            if not isinstance(fs, list) or len(fs) > 50 or len(set(map(str, fs))) != len(fs):
                raise BadInputError("founders must be a list of at most 50 distinct did:key", field="founders")
            for d in fs:
                _did(d, "founders")

    def apply(self, index: int, e: EntryLike) -> None:
        self.check(index, e)
        if e.type == GENESIS:
            self.genesis = index
            self.founders = tuple(e.body.get("founders", []))


# -- models ---------------------------------------------------------------------------------------------

def model_name_of(e: EntryLike) -> str | None:
    """The model an entry names (``body.name``, or ``body.model`` for the status types); None if none."""
    b = e.body
    keys = ("name",) if e.type == "model.register" else ("name", "model")
    names = {b[k] for k in keys if isinstance(b.get(k), str)}
    if len(names) != 1:
        return None
    n = names.pop()
    return n if 0 < len(n) <= 200 and not n.startswith("#") and not any(c.isspace() for c in n) else None


@dataclass
class _Model:
    name: str
    owner: str                # the principal (first key of its chain) that registered the name first
    registered_by: str        # the key that signed the first registration
    first: int
    versions: list[int] = field(default_factory=list)   # authoritative model.register indices, in order
    ruling: dict[str, Any] | None = None                # the owner's own revoke/suspend, if in force
    ignored: list[tuple[int, str]] = field(default_factory=list)


class ModelBook:
    """Model names, owners, versions and the owners' own rulings (see the module docstring)."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.models: dict[str, _Model] = {}
        self.registrations: dict[int, str] = {}   # index of every effective model.register -> its name

    def owner_of(self, name: str) -> str | None:
        m = self.models.get(name)
        return m.owner if m else None

    def check(self, index: int, e: EntryLike) -> None:
        name = model_name_of(e)
        if e.type in RESERVED_TYPES:
            raise _refuse(e, f"{e.type} is a DAO action: it takes effect only inside an executed proposal")
        if name is None:
            if e.type == "model.register":
                return  # names nothing: claims nothing, changes nothing
            raise BadInputError(f"{e.type} must name a model (body.name)", field="body.name")
        m = self.models.get(name)
        if m is None:
            if e.type != "model.register":
                raise _refuse(e, f"model {name} is not registered in this ledger, so it has no owner to act "
                                 "(only the DAO can rule on an unregistered name)")
            return
        if not self.keys.acts_for(e.signer, m.owner):
            what = "register a new version of" if e.type == "model.register" else "rule on"
            raise _refuse(e, f"only the owner of model {name} (registered at entry {m.first}) may {what} it; "
                             + self.keys.why_not(e.signer, m.owner))

    def apply(self, index: int, e: EntryLike, time: str = "") -> None:
        self.check(index, e)
        name = model_name_of(e)
        if name is None:
            return
        m = self.models.get(name)
        if m is None:
            m = self.models[name] = _Model(name, self.keys.principal(e.signer), e.signer, index)
        if e.type == "model.register":
            m.versions.append(index)
            self.registrations[index] = name
        elif e.type in _RULING:
            reason = e.body.get("reason")
            m.ruling = {"state": _RULING[e.type], "by": f"owner {e.signer}", "authority": "owner",
                        "entry": index, "time": time or e.time,
                        "reason": reason if isinstance(reason, str) else ""}
        elif e.type in _LIFT:
            m.ruling = None

    def note_ignored(self, index: int, e: EntryLike, why: str) -> None:
        name = model_name_of(e)
        m = self.models.get(name) if name else None
        if m is not None and len(m.ignored) < 100:
            m.ignored.append((index, why))


# -- the one answer about a model -----------------------------------------------------------------------

@dataclass(frozen=True)
class Ruling:
    state: str         # revoked | suspended | approved
    authority: str     # owner | dao | guardians
    by: str            # "owner did:key:...", "proposal 3", "guardians (2 of 3)"
    entry: int
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "authority": self.authority, "by": self.by, "entry": self.entry,
                "reason": self.reason}


_SEVERITY = {"revoked": 2, "suspended": 1}


@dataclass(frozen=True)
class ModelStatus:
    """Whether model ``name`` may be used, and on whose word.

    ``state``: ``unregistered`` (no effective registration and no DAO ruling), ``active``, ``approved``
    (by the DAO), ``suspended`` or ``revoked``.  ``by`` / ``authority`` / ``entry`` / ``reason`` name the
    ruling that decides; ``rulings`` lists every ruling in force (the owner's and the DAO's are independent:
    each authority lifts only its own).  ``registration`` is the latest effective ``model.register``."""

    name: str
    state: str
    by: str | None = None
    authority: str | None = None
    entry: int | None = None
    reason: str = ""
    owner: str | None = None
    registration: int | None = None
    versions: tuple[int, ...] = ()
    rulings: tuple[Ruling, ...] = ()
    ignored: tuple[tuple[int, str], ...] = ()

    @property
    def usable(self) -> bool:
        return self.state not in ("revoked", "suspended")

    def ruling_text(self) -> str:
        """``revoked by proposal 3 (unsafe)`` / ``suspended by guardians (2 of 3) (reason)`` / ``active``."""
        if self.by is None:
            return self.state
        return f"{self.state} by {self.by}" + (f" ({self.reason})" if self.reason else "")

    def describe(self) -> str:
        if self.usable:
            return f"model {self.name} is {self.ruling_text()}"
        return f"model {self.name} was {self.ruling_text()} at entry {self.entry}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "usable": self.usable, "by": self.by,
                "authority": self.authority, "entry": self.entry, "reason": self.reason, "owner": self.owner,
                "registration": self.registration, "versions": list(self.versions),
                "rulings": [r.to_dict() for r in self.rulings],
                "ignored": [{"entry": i, "reason": r} for i, r in self.ignored]}


def model_status(book: ModelBook, name: str, dao: dict[str, Any] | None) -> ModelStatus:
    """Combine the owner's ruling (``book``) with the DAO's (``dao``: ``GovState.models[name]``)."""
    m = book.models.get(name)
    rulings: list[Ruling] = []
    if m is not None and m.ruling is not None:
        r = m.ruling
        rulings.append(Ruling(r["state"], "owner", r["by"], r["entry"], r["reason"]))
    approved = False
    if dao is not None:
        st = dao.get("state")
        if st in _SEVERITY:
            by = str(dao.get("by", "the DAO"))
            rulings.append(Ruling(st, "guardians" if by.startswith("guardians") else "dao", by,
                                  int(dao.get("entry", -1)), str(dao.get("reason", ""))))
        approved = st == "approved"
    base = ModelStatus(name=name, state="active" if m and m.versions else "unregistered",
                       owner=m.owner if m else None, registration=m.versions[-1] if m and m.versions else None,
                       versions=tuple(m.versions) if m else (), rulings=tuple(rulings),
                       ignored=tuple(m.ignored) if m else ())
    if rulings:
        top = max(rulings, key=lambda r: (_SEVERITY[r.state], r.entry))
        return replace(base, state=top.state, by=top.by, authority=top.authority, entry=top.entry,
                       reason=top.reason)
    if approved and dao is not None:
        entry = dao.get("entry")
        return replace(base, state="approved", by=str(dao.get("by")), authority="dao",
                       entry=entry if isinstance(entry, int) else None, reason=str(dao.get("reason", "")))
    return base


# -- everything above in one fold ------------------------------------------------------------------------

_KEY_TYPES = ("identity.register", "identity.rotate", "identity.revoke")


class AuthorityState:
    """Keys + log configuration + model book, folded together in log order.

    ``check(index, e)`` raises (NotAuthorisedError when the signer may not, another BadInputError when the
    entry is malformed) and changes nothing; ``apply`` checks then changes; ``replay_apply`` records a
    refusal in ``ignored`` instead of raising (what a fold over a log does)."""

    TYPES = frozenset(_KEY_TYPES + MODEL_TYPES + RESERVED_TYPES)

    def __init__(self, operator: str | None) -> None:
        self.keys = Keys()
        self.config = LogConfig(operator)
        self.models = ModelBook(self.keys)
        self.last_index = -1
        self.ignored: list[tuple[int, str]] = []

    @staticmethod
    def handles(t: str) -> bool:
        return t in AuthorityState.TYPES or t.startswith("log.")

    def check(self, index: int, e: EntryLike) -> None:
        t = e.type
        if t.startswith("log."):
            self.config.check(index, e)
        elif t in _KEY_TYPES:
            self.keys.check(index, e)
        elif t in MODEL_TYPES or t in RESERVED_TYPES:
            self.models.check(index, e)

    def apply(self, index: int, e: EntryLike) -> None:
        if index <= self.last_index:
            raise ConflictError(f"entry {index} is not after the last applied entry {self.last_index}",
                                field="index")
        t = e.type
        if t.startswith("log."):
            self.config.apply(index, e)
        elif t in _KEY_TYPES:
            self.keys.apply(index, e)
        elif t in MODEL_TYPES or t in RESERVED_TYPES:
            self.models.apply(index, e)
        self.last_index = index

    def replay_apply(self, index: int, e: EntryLike) -> str | None:
        try:
            self.apply(index, e)
            return None
        except BadInputError as exc:
            self.last_index = max(self.last_index, index)
            if len(self.ignored) < 10000:
                self.ignored.append((index, exc.message))
            if e.type in MODEL_TYPES:
                self.models.note_ignored(index, e, exc.message)
            return exc.message
