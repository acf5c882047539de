"""`ailedger subnet ...`: incentivised AI subnets (tasks scored by staked validators with commit-reveal
weights and a Yuma-style epoch fold), the replay that recomputes every epoch, and the adversarial simulation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, emit_lines, json_option, ledger_option, open_ledger, progress
from ailedger.cli.gov import as_option, load_identity, time_option
from ailedger.errors import BadInputError


def _task(spec: str) -> dict[str, Any]:
    """--task: a JSON object, a file holding one, or plain text (kept as {"spec": TEXT})."""
    p = Path(spec)
    text = spec
    try:
        if p.is_file():
            text = p.read_text(encoding="utf-8")
    except OSError:
        pass
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"--task is not valid JSON: {exc}", field="task") from None
        if not isinstance(obj, dict):
            raise BadInputError("--task must be a JSON object", field="task")
        return obj
    if not text.strip():
        raise BadInputError("--task must describe the task and its evaluation rule", field="task")
    return {"spec": text.strip()}


def _json_file(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"cannot read {what} file {path}: {exc.strerror}", field=what) from None
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{what} file {path} is not valid JSON: {exc}", field=what) from None


def _params(items: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise BadInputError(f"--param must look like NAME=INTEGER, got {it!r}", field="params")
        try:
            out[k] = int(v)
        except ValueError:
            raise BadInputError(f"--param {k}: {v!r} is not an integer", field=k) from None
    return out


def _weights(text: str | None, path: str | None) -> dict[int, float]:
    """UID=SCORE pairs (comma separated) or a JSON file {"UID": SCORE}."""
    if (text is None) == (path is None):
        raise BadInputError("give the weights with --weights UID=SCORE,... or --weights-file FILE", field="weights")
    pairs: list[tuple[Any, Any]]
    if path is not None:
        try:
            obj = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInputError(f"cannot read weights file {path}: {exc}", field="weights") from None
        if not isinstance(obj, dict):
            raise BadInputError("a weights file is a JSON object {\"UID\": SCORE}", field="weights")
        pairs = list(obj.items())
    else:
        pairs = []
        for x in (text or "").split(","):
            if x.strip():
                u, sep, score = x.partition("=")
                pairs.append((u, score if sep else None))
    out: dict[int, float] = {}
    for u, w in pairs:
        try:
            uid = int(str(u).strip())
        except ValueError:
            raise BadInputError(f"miner uid {u!r} is not an integer", field="weights") from None
        if w is None:
            raise BadInputError(f"weight for miner uid {uid} is missing (UID=SCORE)", field="weights")
        try:
            num = float(w)
        except (TypeError, ValueError):
            raise BadInputError(f"weight for miner uid {uid} is not a number: {w!r}", field="weights") from None
        if not math.isfinite(num):
            raise BadInputError(f"weight for miner uid {uid} is not a finite number: {w}", field="weights")
        if uid in out:
            raise BadInputError(f"miner uid {uid} is given twice", field="weights")
        out[uid] = num
    return out


def _written(r: dict[str, Any]) -> str:
    return f"{r['type']} at entry {r['index']} by {r['signer']}"


def show_chart(info: dict[str, Any], path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    eps = info["epoch_results"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    if eps:
        m = max(len(e["pay"]["miners"]) for e in eps)
        pay = np.zeros((len(eps), m))
        for i, e in enumerate(eps):
            pay[i, :len(e["pay"]["miners"])] = e["pay"]["miners"]
        bottom = np.zeros(len(eps))
        xs = [e["epoch"] for e in eps]
        for j in range(m):
            ax.bar(xs, pay[:, j], bottom=bottom, label=f"miner {j}")
            bottom += pay[:, j]
        ax.plot(xs, [sum(e["pay"]["validators"]) for e in eps], "k.-", label="validators (total)")
        ax.legend(fontsize=7, ncol=2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("units paid")
    ax.set_title(f"subnet {info['name']}: payouts per epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def register(main: click.Group) -> None:
    @main.group("subnet")
    def subnet_group() -> None:
        """Incentivised AI subnets: miners serve, staked validators score (commit-reveal), epochs pay."""

    @subnet_group.command("create")
    @click.argument("name")
    @click.option("--task", "spec", required=True, metavar="SPEC",
                  help="The task and its evaluation rule: a JSON object, a file holding one, or text.")
    @click.option("--epoch-seconds", type=float, default=3600.0, show_default=True, help="Length of an epoch.")
    @click.option("--param", "params", multiple=True, metavar="NAME=INT",
                  help=("emission, miner_bps, validator_bps, owner_bps, kappa_bps, bond_alpha_bps, burn_clipped, "
                        "copy_tol_bps, copy_keep_bps, miner_min_stake."))
    @click.option("--pool", "pool_file", default=None, metavar="FILE",
                  help="The evaluation pool, a JSON list of {prompt, answer}: committed now, revealed later.")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def create_cmd(name: str, spec: str, epoch_seconds: float, params: tuple[str, ...], pool_file: str | None,
                   who: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Create subnet NAME (the signer owns it)."""
        from ailedger.subnets import service

        if not math.isfinite(epoch_seconds) or epoch_seconds <= 0:
            raise BadInputError("--epoch-seconds must be a positive number", field="epoch_seconds")
        pool = _json_file(pool_file, "pool") if pool_file else None
        with open_ledger(ledger_dir) as led:
            r = service.create(led, load_identity(led, who), name, _task(spec), epoch_ms=round(epoch_seconds * 1000),
                               params=_params(params), pool=pool, time=at)
        emit(as_json, r, f"subnet {name} created at entry {r['index']}; owner {r['signer']}; params {r['body']['params']}"
                         + (f"; pool of {len(pool)} item(s) committed ({r['body']['pool_commitment'][:16]}...)"
                            if pool is not None else ""))

    @subnet_group.command("stake")
    @click.argument("name")
    @click.argument("amount", type=int)
    @as_option
    @time_option
    @ledger_option
    @json_option
    def stake_cmd(name: str, amount: int, who: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Lock AMOUNT reputation on subnet NAME (a governance stake claim of kind subnet on subnet:NAME)."""
        from ailedger.subnets import service

        with open_ledger(ledger_dir) as led:
            r = service.stake(led, load_identity(led, who), name, amount, time=at)
        emit(as_json, r, f"staked {r['stake']} reputation on subnet {name} (claim {r['claim_id']}; it counts while "
                         f"locked and can be released from {r['challenge_window_ends']})")

    @subnet_group.command("pool")
    @click.argument("name")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def pool_cmd(name: str, who: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Reveal subnet NAME's committed evaluation pool (its owner; from the secret kept at create)."""
        from ailedger.subnets import service

        with open_ledger(ledger_dir) as led:
            r = service.reveal_pool(led, load_identity(led, who), name, time=at)
        emit(as_json, r, f"pool of subnet {name} revealed at entry {r['index']} ({len(r['body']['items'])} item(s))")

    @subnet_group.command("audit")
    @click.argument("name")
    @ledger_option
    @json_option
    def audit_cmd(name: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Check every folded reveal's weights against the revealed pool; exit 1 if one differs."""
        from ailedger.errors import VerificationError
        from ailedger.subnets import service

        with open_ledger(ledger_dir, read_only=True) as led:
            r = service.audit(led, name)
        lines = [(f"subnet {name}: {len(r['reveals'])} reveal(s) checked against the pool of entry "
                  f"{r['pool_entry']} ({r['pool_items']} item(s))")]
        for x in r["reveals"]:
            lines.append(f"  epoch {x['epoch']} reveal {x['reveal']} by {x['validator']}: {x['status']}"
                         + (f" ({x['problem']})" if x["problem"] and x["status"] == "differs" else ""))
        if not r["agree"]:
            bad = next(x for x in r["reveals"] if x["status"] == "differs")
            raise VerificationError(f"epoch {bad['epoch']} reveal {bad['reveal']}: {bad['problem']}", report=r)
        emit_lines(r, as_json, lines)

    @subnet_group.command("params")
    @click.argument("name")
    @click.option("--param", "params", multiple=True, required=True, metavar="NAME=INT")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def params_cmd(name: str, params: tuple[str, ...], who: str, at: str | None, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """Change subnet NAME's parameters (its owner only); they apply from the next epoch that starts."""
        from ailedger.subnets import service

        with open_ledger(ledger_dir) as led:
            r = service.set_params(led, load_identity(led, who), name, _params(params), time=at)
        emit(as_json, r, _written(r))

    @subnet_group.command("register")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["miner", "validator"]), required=True)
    @as_option
    @time_option
    @ledger_option
    @json_option
    def register_cmd(name: str, role: str, who: str, at: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Register the signer in subnet NAME as a miner or a validator."""
        from ailedger.subnets import service

        with open_ledger(ledger_dir) as led:
            r = service.register(led, load_identity(led, who), name, role, time=at)
            uid = len(getattr(service.book(led).get(name), role + "s")) - 1
        r["uid"] = uid
        emit(as_json, r, f"{role} uid {uid} of subnet {name} (entry {r['index']})")

    @subnet_group.command("commit")
    @click.argument("name")
    @click.option("--weights", "wtext", metavar="UID=SCORE,...", help="Scores per miner uid (non-negative).")
    @click.option("--weights-file", "wfile", metavar="FILE", help='JSON object {"UID": SCORE}.')
    @click.option("--epoch", "epoch_n", type=int, default=None, help="Default: the epoch of the entry's time.")
    @click.option("--salt", default=None, help="Default: 16 random bytes (kept in the ledger folder for reveal).")
    @click.option("--observations", "obs_file", default=None, metavar="FILE",
                  help='Instead of weights: JSON {"UID": [[pool item, answer served], ...]}, scored on --pool.')
    @click.option("--pool", "pool_file", default=None, metavar="FILE", help="The evaluation pool (JSON list).")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def commit_cmd(name: str, wtext: str | None, wfile: str | None, epoch_n: int | None, salt: str | None,
                   obs_file: str | None, pool_file: str | None, who: str, at: str | None, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """Commit (salted sha256) to a weight vector for this epoch; reveal it in the next one."""
        from ailedger.subnets import service

        if obs_file is not None:
            if wtext is not None or wfile is not None:
                raise BadInputError("give weights or --observations, not both", field="weights")
            if pool_file is None:
                raise BadInputError("--observations need --pool to score them", field="pool")
            obs, pool, w = _json_file(obs_file, "observations"), _json_file(pool_file, "pool"), None
        else:
            obs, pool, w = None, None, _weights(wtext, wfile)
        with open_ledger(ledger_dir) as led:
            r = service.commit(led, load_identity(led, who), name, w, epoch=epoch_n, salt=salt, observations=obs,
                               pool=pool, time=at)
        emit(as_json, r, f"committed epoch {r['epoch']} weights at entry {r['index']}; reveal with "
                         f"`ailedger subnet reveal {name} {r['epoch']} --as {who}` in epoch {r['epoch'] + 1}")

    @subnet_group.command("reveal")
    @click.argument("name")
    @click.argument("epoch_n", metavar="EPOCH", type=int)
    @click.option("--evidence", multiple=True, type=int, metavar="INDEX",
                  help="An inference.batch entry the scores came from (repeatable).")
    @as_option
    @time_option
    @ledger_option
    @json_option
    def reveal_cmd(name: str, epoch_n: int, evidence: tuple[int, ...], who: str, at: str | None,
                   ledger_dir: Path | None, as_json: bool) -> None:
        """Reveal the weights committed for EPOCH (during the epoch after it)."""
        from ailedger.subnets import service

        with open_ledger(ledger_dir) as led:
            r = service.reveal(led, load_identity(led, who), name, epoch_n, evidence=list(evidence), time=at)
        emit(as_json, r, f"revealed epoch {epoch_n} weights at entry {r['index']}")

    @subnet_group.command("epoch")
    @click.argument("name")
    @click.argument("epoch_n", metavar="[N]", type=int, required=False)
    @as_option
    @time_option
    @ledger_option
    @json_option
    def epoch_cmd(name: str, epoch_n: int | None, who: str, at: str | None, ledger_dir: Path | None,
                  as_json: bool) -> None:
        """Fold epoch N (default: the next) of NAME and log the result (anyone, as a keeper)."""
        from ailedger.subnets import service

        with open_ledger(ledger_dir) as led:
            r = service.epoch(led, load_identity(led, who), name, epoch_n, time=at)
        pay = r["body"]["result"]["pay"]
        emit(as_json, r, f"epoch {r['body']['epoch']} of {name} at entry {r['index']}: miners "
                         f"{sum(pay['miners']):,}, validators {sum(pay['validators']):,}, owner {pay['owner']:,}, "
                         f"unissued {pay['unissued']:,}")

    @subnet_group.command("show")
    @click.argument("name")
    @click.option("--png", default=None, metavar="FILE", help="Chart of the payouts per epoch.")
    @ledger_option
    @json_option
    def show_cmd(name: str, png: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """A subnet: its task, parameters, miners, validators, epochs and what each earned."""
        from ailedger.subnets import service

        with open_ledger(ledger_dir, read_only=True) as led:
            info = service.show(led, name)
        if png:
            info["png"] = show_chart(info, png)
        lines = [f"subnet {info['name']} (entry {info['created']}), owner {info['owner']}",
                 f"  task: {json.dumps(info['task'], sort_keys=True)}",
                 f"  epoch: {info['epoch_ms'] / 1000:g} s; params {info['params']}",
                 (f"  miners: {len(info['miners'])}, validators: {len(info['validators'])}, epochs folded: "
                  f"{info['epochs']} (next {info['next_epoch']})")]
        for uid, did in enumerate(info["miners"]):
            lines.append(f"  miner {uid} {did}: stake {info['stake'].get(did, 0):,}, "
                         f"earned {info['earned'].get(did, 0):,}")
        for uid, did in enumerate(info["validators"]):
            lines.append(f"  validator {uid} {did}: stake {info['stake'].get(did, 0):,}, "
                         f"earned {info['earned'].get(did, 0):,}")
        for ep in info["epoch_results"]:
            for did in ep["copies"]:
                lines.append(f"  epoch {ep['epoch']}: {did} copied a previous-epoch vector (dividends cut)")
        if info["pool_commitment"]:
            lines.append(f"  pool: committed {info['pool_commitment'][:16]}..., "
                         + (f"revealed at entry {info['pool']['index']} ({info['pool']['items']} item(s))"
                            if info["pool"] else "not revealed yet"))
        for x in info["ignored"]:
            lines.append(f"  ignored entry {x['index']} ({x['type']}): {x['reason']}")
        if png:
            lines.append(f"  chart: {png}")
        emit_lines(info, as_json, lines)

    @subnet_group.command("replay")
    @click.argument("name", required=False)
    @click.option("--verify-signatures", is_flag=True, help="Also check every subnet entry's signature.")
    @ledger_option
    @json_option
    def replay_cmd(name: str | None, verify_signatures: bool, ledger_dir: Path | None, as_json: bool) -> None:
        """Recompute every epoch from the log; exit 1 unless every logged result agrees bit for bit."""
        from ailedger.subnets import service

        with open_ledger(ledger_dir, read_only=True) as led, progress(None, "epochs", not as_json) as bar:
            r = service.replay(led, name, verify_signatures=verify_signatures, progress=lambda n: bar.update(1))
        emit(as_json, r, f"replayed {r['epochs_checked']} epoch(s) of {len(r['subnets'])} subnet(s): every result "
                         f"agrees bit for bit" + (f"; {len(r['ignored'])} entry(ies) ignored by the rules"
                                                  if r["ignored"] else ""))

    @subnet_group.command("simulate")
    @click.option("--cartel", "cartel", type=float, default=0.3, show_default=True, help="Cartel's share of stake.")
    @click.option("--copiers", type=float, default=0.1, show_default=True, help="Copiers' share of stake.")
    @click.option("--miners", type=int, default=16, show_default=True)
    @click.option("--epochs", type=int, default=40, show_default=True)
    @click.option("--no-commit-reveal", is_flag=True, help="Copiers see this epoch's weights as they are sent.")
    @click.option("--no-copy-rule", is_flag=True, help="Do not cut the dividends of reveals that copy.")
    @click.option("--prompts", type=int, default=200, show_default=True, help="Prompts per validator per miner.")
    @click.option("--param", "params", multiple=True, metavar="NAME=INT", help="Subnet parameters (as create).")
    @click.option("--seed", type=int, default=0, show_default=True)
    @click.option("--png", default=None, metavar="FILE", help="Chart: earnings per class, the cartel miner's share.")
    @json_option
    def simulate_cmd(cartel: float, copiers: float, miners: int, epochs: int, no_commit_reveal: bool,
                     no_copy_rule: bool, prompts: int, params: tuple[str, ...], seed: int, png: str | None,
                     as_json: bool) -> None:
        """Honest validators, a colluding cartel, lazy copiers and a cheap miner: consensus vs plain mean."""
        from ailedger.subnets.simulate import SimConfig, chart, simulate, table

        if not (0 <= cartel < 1 and 0 <= copiers < 1 and cartel + copiers < 1):
            raise BadInputError("--cartel and --copiers are shares of stake in [0, 1) and leave some honest stake",
                                field="cartel")
        if miners < 3 or epochs < 2:
            raise BadInputError("--miners must be >= 3 and --epochs >= 2", field="miners")
        if prompts < 1:
            raise BadInputError("--prompts must be >= 1", field="prompts")
        from ailedger.subnets.yuma import Params

        cfg = SimConfig(miners=miners, cartel_share=cartel, copier_share=copiers, epochs=epochs,
                        commit_reveal=not no_commit_reveal, copy_rule=not no_copy_rule, prompts=prompts, seed=seed)
        res = simulate(cfg, params=Params.from_dict(_params(params)))
        lines = table(res)
        if png:
            res["png"] = chart(res, png)
            lines.append(f"chart: {png}")
        res.pop("series", None) if as_json else None
        emit_lines(res, as_json, lines)
