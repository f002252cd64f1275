"""The cost of writing the mirror alone (issue 2). Run by hand after bench/sync.py:

    .venv/bin/python bench/sync_lower_bound.py

bench/sync.py leaves a synced mirror in PostgreSQL database toqdash_bench. This copies its job and
asset rows (already derived: no MySQL, no Python per row) into empty tables shaped like the mirror's,
twice, and prints how long PostgreSQL takes to write them:
  indexed      COPY into tables with all the mirror's indexes (what any incremental write pays)
  bulk order   COPY into tables without indexes, then build the same indexes (the cheapest order
               for a first load)
It measures bench/sync.py's floor first, in the same run, and prints the ratios: no sync design
that writes this mirror can be faster than these figures on the same machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import psycopg

DSN = "host=127.0.0.1 port=5432 user=postgres dbname=toqdash_bench"
TABLES = {"jobs": "jobs_job", "assets": "jobs_mediaasset"}


def dump(cur: psycopg.Cursor, table: str, path: Path) -> None:
    with path.open("wb") as fh, cur.copy(f"COPY (SELECT * FROM {table}) TO STDOUT") as copy:
        for data in copy:
            fh.write(data)


def load(cur: psycopg.Cursor, table: str, path: Path) -> float:
    t = time.monotonic()
    with path.open("rb") as fh, cur.copy(f"COPY {table} FROM STDIN") as copy:
        while data := fh.read(1 << 20):
            copy.write(data)
    return time.monotonic() - t


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sync import floor  # bench/sync.py

    t_floor = floor()
    print(f"floor (SSCursor → COPY, no logic): {t_floor:.1f} s", flush=True)
    with psycopg.connect(DSN, autocommit=True) as conn, tempfile.TemporaryDirectory() as tmp:
        cur = conn.cursor()
        total_indexed = total_bulk = 0.0
        for name, table in TABLES.items():
            path = Path(tmp) / f"{table}.copy"
            dump(cur, table, path)
            rows = cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            indexes = [
                r[0] for r in cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table]).fetchall()
            ]

            cur.execute(f"DROP TABLE IF EXISTS lb_{table}; CREATE TABLE lb_{table} (LIKE {table} INCLUDING ALL)")
            indexed = load(cur, f"lb_{table}", path)

            cur.execute(f"DROP TABLE lb_{table}; CREATE TABLE lb_{table} (LIKE {table} INCLUDING DEFAULTS)")
            copied = load(cur, f"lb_{table}", path)
            t = time.monotonic()
            for i, definition in enumerate(indexes):
                on = definition.split(" ON ", 1)[1].replace(f"public.{table} ", f"lb_{table} ", 1)
                unique = "UNIQUE " if definition.startswith("CREATE UNIQUE") else ""
                cur.execute(f"CREATE {unique}INDEX lb_{table}_{i} ON {on}")
            built = time.monotonic() - t
            cur.execute(f"DROP TABLE lb_{table}")

            total_indexed += indexed
            total_bulk += copied + built
            print(
                f"{name:7} {rows:>10,} rows  indexed {indexed:6.1f} s   bulk order {copied:6.1f} s copy"
                f" + {built:5.1f} s for {len(indexes)} indexes",
                flush=True,
            )
        print(
            f"writing the mirror alone: indexed {total_indexed:.1f} s = {total_indexed / t_floor:.2f}× floor,"
            f" bulk order {total_bulk:.1f} s = {total_bulk / t_floor:.2f}× floor"
        )


if __name__ == "__main__":
    main()
