"""Coverage-guided fuzzing of the parsers with atheris (libFuzzer for Python).

    python tests/fuzz/atheris_driver.py TARGET [libFuzzer options] [CORPUS_DIR ...]

TARGET is a name from ``fuzzlib.TARGETS`` (note, checkpoint, car, safetensors, ...) or ``all``
(the first byte of each input picks the target). Useful options: ``-max_total_time=SECONDS``,
``-runs=N``, ``-timeout=SECONDS`` (one input), ``-rss_limit_mb=MB``, ``-jobs=N``. With no corpus
directory the target's seeds are written to a temporary one. A crash (any exception that is not an
ailedger error) prints the traceback and leaves the input in ``crash-<sha1>``; keep it as a
regression test in test_fuzz_regressions.py.
"""

from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import atheris

with atheris.instrument_imports(include=["ailedger"]):
    import fuzzlib  # imports every parser under ailedger.core

    import ailedger.anchoring.service
    import ailedger.inference.payloads
    import ailedger.inference.store
    import ailedger.provenance.models
    import ailedger.tlog.witness  # noqa: F401

NAMES = sorted(fuzzlib.TARGETS)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in [*NAMES, "all"]:
        sys.exit(f"usage: {sys.argv[0]} TARGET [libFuzzer options] [CORPUS_DIR ...]\nTARGET: all, {', '.join(NAMES)}")
    target = sys.argv.pop(1)
    if not any(not a.startswith("-") for a in sys.argv[1:]):  # no corpus given: start from the seeds
        corpus = tempfile.mkdtemp(prefix=f"ailedger-fuzz-{target}-")
        for i, name in enumerate(NAMES if target == "all" else [target]):
            for j, seed in enumerate(fuzzlib.seeds_for(name)):
                with open(os.path.join(corpus, f"seed-{name}-{j}"), "wb") as f:
                    f.write((bytes([NAMES.index(name)]) if target == "all" else b"") + seed)
        sys.argv.append(corpus)

    if target == "all":
        def one(data: bytes) -> None:
            if data:
                fuzzlib.run_plain(NAMES[data[0] % len(NAMES)], data[1:])
    else:
        def one(data: bytes) -> None:
            fuzzlib.run_plain(target, data)

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
