#!/usr/bin/env python3
"""Run the command blocks of a Markdown page as written, in order, in a fresh folder.

Docs that run: every shell block (a fence with no language, or ``sh``/``bash``/``shell``) and every
``python`` block of README.md and docs/*.md is run, top to bottom, as one script per page, in a new
temporary folder with no ledger in the environment. Rules a page follows so that it runs:

- Lines holding a placeholder the user must fill, written ``<LIKE_THIS>``, are skipped (with the lines
  continued from them by a trailing backslash); one in a trailing ``# comment`` does not count.
- A here-document (``cat > server.py <<'EOF'`` ... ``EOF``) is one command with its body.
- The blocks under a "Quick start" heading are skipped: they are the set-up commands, tried from a
  fresh clone by scripts/fresh-clone-check-like tools, not from inside a running test.
- A server started in a block is started in the background (``... &``); every background job is
  stopped when the page ends. ``text``, ``json`` and other fences are not run.
- ``python`` blocks run with the same interpreter and environment, in the same folder.
- The page runs with this interpreter's folder first on ``PATH`` (so ``ailedger`` and ``python`` are the
  project's; the system's sbin folders, where Debian keeps nginx, are added last when missing), then the pinned anvil binary from ``tools/anvil`` when it is installed; no ``AILEDGER_*``
  variable leaks in from the caller; ``$AILEDGER_DOCRUN_REPO`` is the repository, for a page that needs a
  file from it (a contract, a fixture).

Usage: ``python tools/docrun.py README.md [docs/api.md ...] [--keep] [--timeout S]``.
Exit 0 when every page ran; otherwise the failing command, its output and exit code are printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGS = {"", "sh", "bash", "shell", "console"}
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


@dataclass(frozen=True)
class Block:
    """One runnable fenced block: its language, its text and the line it starts on."""

    lang: str
    text: str
    line: int


def blocks(markdown: str) -> list[Block]:
    """The runnable blocks of a page, in order (quick-start blocks and non-shell/python fences left out)."""
    out: list[Block] = []
    in_fence: str | None = None
    lang = ""
    start = 0
    body: list[str] = []
    skip_section_level = 0
    for n, line in enumerate(markdown.splitlines(), 1):
        if in_fence is None:
            h = HEADING.match(line)
            if h:
                level = len(h.group(1))
                if skip_section_level and level <= skip_section_level:
                    skip_section_level = 0
                if re.search(r"quick ?start", h.group(2), re.IGNORECASE):
                    skip_section_level = level
                continue
            m = FENCE.match(line)
            if m:
                in_fence, lang, start, body = m.group(2), m.group(3).lower(), n, []
            continue
        if line.strip() == in_fence:
            if not skip_section_level and (lang in SHELL_LANGS or lang == "python"):
                out.append(Block("python" if lang == "python" else "sh", "\n".join(body), start))
            in_fence = None
            continue
        body.append(line)
    return out


HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def shell_lines(text: str) -> list[str]:
    """Logical lines (backslash continuations joined, a here-document kept whole with its command),
    placeholders dropped."""
    logical: list[str] = []
    cur = ""
    raws = text.splitlines()
    i = 0
    while i < len(raws):
        raw = raws[i]
        i += 1
        if raw.endswith("\\"):
            cur += raw[:-1] + " "
            continue
        cur += raw
        h = HEREDOC.search(cur)
        if h and not cur.lstrip().startswith("#"):
            end = h.group(2)
            while i < len(raws):  # the body and its terminator belong to this command
                cur += "\n" + raws[i]
                i += 1
                if raws[i - 1].strip() == end:
                    break
        logical.append(cur)
        cur = ""
    if cur:
        logical.append(cur)
    return [ln for ln in logical if ln.strip() and not PLACEHOLDER.search(_code(ln))]


def _code(line: str) -> str:
    """A logical line without its trailing ``# comment`` (a ``#`` after a blank, outside quotes), so a
    placeholder named in a comment does not make the line a user's to fill."""
    quote = ""
    for k, c in enumerate(line):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "#" and (k == 0 or line[k - 1] in " \t"):
            return line[:k]
    return line


def script_for(page: Path, work: Path) -> str:
    """One bash script running every block of ``page`` in order, echoing each command first."""
    parts = ["exec 2>&1", "set -eo pipefail",
             "trap 'rc=$?; j=$(jobs -p); [ -z \"$j\" ] || kill $j 2>/dev/null; exit $rc' EXIT",
             f"cd {shlex.quote(str(work))}"]
    for k, b in enumerate(blocks(page.read_text())):
        if b.lang == "python":
            src = work / f".docrun-{k}.py"
            src.write_text(b.text + "\n")
            parts.append(f"echo {shlex.quote(f'>>> [{page.name}:{b.line}] python block')}")
            parts.append(f"python {shlex.quote(str(src))}")
            continue
        for ln in shell_lines(b.text):
            shown = ln.strip().splitlines()[0] + (" ..." if "\n" in ln.strip() else "")
            parts.append(f"echo {shlex.quote(f'$ [{page.name}:{b.line}] {shown}')}")
            parts.append(ln)
    return "\n".join(parts) + "\n"


def anvil_bin(repo: Path) -> Path | None:
    """The folder holding the pinned anvil binary (``npm ci --prefix tools/anvil``), or one on PATH."""
    cand = repo / "tools" / "anvil" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin"
    if (cand / "anvil").exists() and os.access(cand / "anvil", os.X_OK):
        return cand
    found = shutil.which("anvil")
    return Path(found).parent if found else None


def run_page(page: Path, *, repo: Path, keep: bool = False, timeout: float = 900,
             env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one page in a fresh folder; the completed process carries the transcript."""
    work = Path(tempfile.mkdtemp(prefix=f"docrun-{page.stem}-"))
    work.chmod(0o755)  # like a user's project folder (mkdtemp's 0700 would hide it from nginx's workers)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AILEDGER_")}
    venv_bin = Path(sys.executable).parent
    path = [str(venv_bin)]
    anvil = anvil_bin(repo)
    if anvil is not None:
        path.append(str(anvil))
    have = env.get("PATH", "").split(os.pathsep)
    # the system folders a root or admin shell has (nginx is /usr/sbin/nginx on Debian); a bare PATH of
    # /usr/bin:/bin (cron, `env -i`, some CI runners) would leave the page's `nginx` not found
    sbin = [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in have and Path(d).is_dir()]
    env["PATH"] = os.pathsep.join([*path, *have, *sbin]).strip(os.pathsep)
    env["AILEDGER_DOCRUN_REPO"] = str(repo)
    env.update(env_extra or {})
    script = script_for(page, work)
    proc = subprocess.Popen(["bash", "-c", script], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            out += f"\n[docrun] timed out after {timeout:.0f} s\n"
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything a page left running in the background
        except ProcessLookupError:
            pass
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the work folders")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    rc = 0
    for page in args.pages:
        p = run_page(page, repo=repo, keep=args.keep, timeout=args.timeout)
        status = "ok" if p.returncode == 0 else f"FAILED (exit {p.returncode})"
        print(f"== {page}: {status}")
        if p.returncode != 0:
            rc = 1
            print("\n".join(p.stdout.splitlines()[-40:]))
    return rc


if __name__ == "__main__":
    sys.exit(main())
