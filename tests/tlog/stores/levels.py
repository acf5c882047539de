"""Shared by the level tests (test_dedup_levels, test_terms_levels): how many rows each level table holds."""

import sqlite3


def row_counts(path, tables) -> dict[str, int]:
    """{table: rows} of the SQLite store at ``path``, read on a connection of its own."""
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()
