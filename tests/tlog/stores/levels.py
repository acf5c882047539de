"""Shared by the level tests (test_dedup_levels, test_terms_levels): how many rows each level table holds, and
a store rewritten as an older format kept it."""

import sqlite3


def row_counts(path, tables) -> dict[str, int]:
    """{table: rows} of the SQLite store at ``path``, read on a connection of its own."""
    con = sqlite3.connect(path)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def downgrade(path, table: str, columns: str, levels, fmt: int) -> None:
    """Rewrite the SQLite store at ``path`` as format ``fmt`` kept it: every row of the ``levels`` tables moved
    into ``table`` (``columns``), the level tables dropped, the format recorded."""
    con = sqlite3.connect(path)
    for level in levels:
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {level}")
        con.execute(f"DROP TABLE {level}")
    con.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(fmt),))
    con.commit()
    con.close()
