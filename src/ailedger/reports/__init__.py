"""Compliance reports generated from the ledger, every statement with its entry and an offline proof.

* :mod:`.evidence` -- statements (a claim, the entry it rests on, the fields it quotes) and the offline check
  of a report folder (``verify_report``): every proof, every signature, every claim against its entry.
* :mod:`.technical` -- technical documentation in the structure of EU AI Act Annex IV.
* :mod:`.records` -- Article 12-style record-keeping of a period, with the log range that proves it complete.
* :mod:`.render` -- HTML, pictures (matplotlib) and PDF (WeasyPrint) of a report.

See docs/reports.md.
"""

from __future__ import annotations

from ailedger.reports.records import build_record_keeping
from ailedger.reports.technical import build_technical_doc
from ailedger.reports.verify import verify_report

__all__ = ["build_record_keeping", "build_technical_doc", "verify_report"]
