import json

import pytest
from click.testing import CliRunner


@pytest.fixture
def led(tmp_path):
    """A fresh ledger with identity alice; yields its directory (commands open it themselves)."""
    from ailedger.tlog.ledger import Ledger

    d = tmp_path / "ledger"
    lg = Ledger.init(d, origin="test.example/integrations")
    lg.identities.create("alice")
    lg.close()
    return d


def cli(led, *args):
    """Run `ailedger ARGS --json` on ledger ``led``: (exit code, parsed JSON or None, output)."""
    from ailedger.cli.main import main

    r = CliRunner().invoke(main, [*args, "--json"], env={"AILEDGER_LEDGER": str(led), "AILEDGER_PASSPHRASE": ""})
    out = r.stdout
    try:
        obj = json.loads(out)
    except ValueError:
        obj = None
    return r.exit_code, obj, out + (r.stderr if r.stderr_bytes is not None else "")
