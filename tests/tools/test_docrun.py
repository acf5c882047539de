"""The docs runner (tools/docrun.py): which blocks it runs, which lines it skips, and that a failing
command fails the page."""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("docrun", REPO / "tools" / "docrun.py")
docrun = importlib.util.module_from_spec(spec)
sys.modules["docrun"] = docrun
spec.loader.exec_module(docrun)

PAGE = """# Tool

## Quick start

```
bash scripts/demo.sh
```

## Use

```
echo one > a.txt
cat a.txt \\
  | tr a-z A-Z > b.txt
ailedger blob get <CID> -o x.bin
```

```json
{"not": "run"}
```

```python
print(open("b.txt").read().strip())
```

### Quick start again, deeper

```sh
exit 3
```

## Back at level 2

```bash
test -s b.txt
```
"""


def test_blocks_skip_quick_start_and_non_shell_fences():
    bs = docrun.blocks(PAGE)
    assert [(b.lang, b.line) for b in bs] == [("sh", 11), ("python", 22), ("sh", 34)]
    assert "demo.sh" not in "".join(b.text for b in bs)
    assert "exit 3" not in "".join(b.text for b in bs)


def test_placeholders_and_continuations():
    lines = docrun.shell_lines(docrun.blocks(PAGE)[0].text)
    assert lines == ["echo one > a.txt", "cat a.txt    | tr a-z A-Z > b.txt"]


def test_page_runs_in_order_and_a_failure_fails_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    p = docrun.run_page(page, repo=REPO, timeout=60)
    assert p.returncode == 0, p.stdout
    assert "ONE" in p.stdout
    page.write_text(PAGE.replace("test -s b.txt", "test -s missing.txt"))
    p = docrun.run_page(page, repo=REPO, timeout=60)
    assert p.returncode != 0
    assert "missing.txt" in p.stdout


def test_background_jobs_are_stopped_and_timeouts_reported(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```\nsleep 300 &\necho started\n```\n")
    p = docrun.run_page(page, repo=REPO, timeout=30)
    assert p.returncode == 0 and "started" in p.stdout
    page.write_text("```\nsleep 300\n```\n")
    p = docrun.run_page(page, repo=REPO, timeout=2)
    assert p.returncode != 0 and "timed out" in p.stdout


def test_here_documents_are_one_command(tmp_path):
    text = "cat > s.py <<'EOF'\nprint('from heredoc')\n# not a shell comment here\nEOF\npython s.py\n"
    assert docrun.shell_lines(text) == ["cat > s.py <<'EOF'\nprint('from heredoc')\n# not a shell comment here\nEOF",
                                        "python s.py"]
    page = tmp_path / "page.md"
    page.write_text("```\n" + text + "cat <<END | tr a-z A-Z\nloud\nEND\n```\n")
    p = docrun.run_page(page, repo=REPO, timeout=60)
    assert p.returncode == 0, p.stdout
    assert "from heredoc" in p.stdout and "LOUD" in p.stdout


def test_a_placeholder_in_a_comment_does_not_skip_the_line():
    text = ("curl -s http://x/checkpoint   # tiles at /tile/<L>/<N>\n"
            "ailedger blob get <CID> -o x   # fill the id\n"
            "ailedger stake claim '#1' <KIND> 10\n"
            "echo '# <NOT_A_COMMENT>'\n")
    assert docrun.shell_lines(text) == ["curl -s http://x/checkpoint   # tiles at /tile/<L>/<N>"]


def test_sbin_is_on_path_even_when_the_caller_has_a_bare_path(tmp_path, monkeypatch):
    """A newcomer's shell may have PATH=/usr/bin:/bin (env -i, cron): pages still find /usr/sbin/nginx."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    page = tmp_path / "page.md"
    page.write_text("```\necho \"PATH=$PATH\"\n```\n")
    p = docrun.run_page(page, repo=REPO, timeout=60)
    assert p.returncode == 0, p.stdout
    line = next(x for x in p.stdout.splitlines() if x.startswith("PATH="))
    parts = line[5:].split(":")
    assert parts[0] == str(Path(sys.executable).parent)
    assert "/usr/bin" in parts and ("/usr/sbin" in parts) == Path("/usr/sbin").is_dir()
