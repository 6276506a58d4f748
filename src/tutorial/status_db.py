"""The account status for notebook 01, kept where workflow-per-request keeps it: in a real database (SQLite).

With one short workflow per request, no workflow lives long enough to hold the account; the database does.
Every change goes through `StatusDB.apply`, one SQL transaction that reads the account, checks the rules in
`domain`, writes the new balance and logs the request, or writes nothing at all. The log (`requests`) also
makes a retried activity harmless: a request id already in it is answered from it, not applied twice.

`read_balance` and `write_balance` are the careless alternative (read, decide elsewhere, write later) that
notebook 01 uses to show a lost update; `audit` measures it (balance versus the sum of the logged changes).

The schema is created on first use. Each call opens its own connection, so the store can be used from the
worker's activity threads at the same time; SQLite serialises writers, and a writer that waits longer than
`busy_timeout` gets ``sqlite3.OperationalError: database is locked`` (a transient error: Temporal retries it).

This module is notebook-side (it reads tables into pandas): the activities in `tutorial.workflows.account_requests`
are handed a `StatusDB` object when the worker is built, so the workflow sandbox never imports it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .workflows import domain

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id   TEXT PRIMARY KEY,
    balance      INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    transactions INTEGER NOT NULL DEFAULT 0,
    open         INTEGER NOT NULL DEFAULT 1,
    updated_at   TEXT
);
CREATE TABLE IF NOT EXISTS requests (
    request_id    TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    operation     TEXT NOT NULL,
    amount        INTEGER NOT NULL,
    fee           INTEGER NOT NULL DEFAULT 0,
    delta         INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    code          TEXT NOT NULL DEFAULT '',
    applied_at    TEXT NOT NULL
);
"""

_ready: set[str] = set()  # database files whose schema this process has already created
_ready_lock = threading.Lock()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Applied:
    """What a committed request did (or, for a duplicate, what it had done the first time)."""

    request_id: str
    account_id: str
    operation: str
    amount: int
    fee: int
    balance: int  # after the request
    transactions: int
    code: str
    duplicate: bool = False


class StatusDB:
    """One SQLite file holding accounts and the log of the requests applied to them."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0):
        self.path = Path(path)
        self.busy_timeout = busy_timeout

    def __repr__(self) -> str:
        return f"StatusDB({str(self.path)!r})"

    # -- connections -------------------------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A new connection in autocommit mode (each statement commits unless we BEGIN); schema ensured."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        key = str(self.path.resolve())
        if key not in _ready or not self._has_schema(conn):
            with _ready_lock:
                conn.execute("PRAGMA journal_mode=WAL")  # readers (pandas) never block the writer
                conn.executescript(SCHEMA)
                _ready.add(key)
        return conn

    @staticmethod
    def _has_schema(conn: sqlite3.Connection) -> bool:
        found = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                             "('accounts', 'requests')").fetchone()[0]
        return found == 2

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE (take the write lock now) ... COMMIT, or ROLLBACK on any exception."""
        with closing(self.connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def exists(self) -> bool:
        return self.path.exists()

    def drop(self) -> None:
        """Delete the database file (and SQLite's -wal / -shm companions): the next use starts empty."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        _ready.discard(str(self.path.resolve()))

    def tables(self) -> list[str]:
        if not self.exists():
            return []
        with closing(sqlite3.connect(self.path)) as conn:
            return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]

    # -- the sound way: one transaction per request ------------------------------------------------------

    @staticmethod
    def _load(conn: sqlite3.Connection, account_id: str) -> domain.Account:
        row = conn.execute("SELECT balance, open, transactions FROM accounts WHERE account_id = ?",
                           (account_id,)).fetchone()
        if row is None:
            return domain.Account(account_id)  # a new account starts empty; it is written only if a change commits
        return domain.Account(account_id, balance=row[0], open=bool(row[1]), transactions=row[2])

    @staticmethod
    def _logged(conn: sqlite3.Connection, request_id: str) -> Applied | None:
        row = conn.execute(
            "SELECT r.account_id, r.operation, r.amount, r.fee, r.balance_after, r.code, a.transactions "
            "FROM requests r JOIN accounts a USING (account_id) WHERE r.request_id = ?", (request_id,)).fetchone()
        if row is None:
            return None
        account_id, operation, amount, fee, balance, code, transactions = row
        return Applied(request_id, account_id, operation, amount, fee, balance, transactions, code, duplicate=True)

    def apply(self, request_id: str, account_id: str, operation: str, amount: int, *, fee: int = 0,
              code: str = "") -> Applied:
        """Apply one request in one transaction: all of it (amount, fee, log line) or nothing.

        Raises `domain.AccountError` (nothing written) when a rule says no; a request id seen before is
        answered from the log and not applied again.
        """
        if not request_id:
            raise ValueError("a request needs a request_id (the workflow id)")
        with self.transaction() as conn:
            done = self._logged(conn, request_id)
            if done is not None:
                return done
            before = self._load(conn, account_id)
            after = domain.apply(before, domain.Transaction(operation, amount, request_id))
            if fee:
                try:
                    after = domain.apply(after, domain.Transaction("withdraw", fee, f"{request_id}/fee"))
                except domain.InsufficientFunds:
                    raise domain.InsufficientFunds(f"cannot {operation} {amount} plus a fee of {fee}: balance is "
                                                   f"{before.balance}") from None
            transactions = before.transactions + 1
            now = _now()
            conn.execute(
                "INSERT INTO accounts (account_id, balance, transactions, open, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET balance = excluded.balance, "
                "transactions = excluded.transactions, updated_at = excluded.updated_at",
                (account_id, after.balance, transactions, int(after.open), now))
            conn.execute(
                "INSERT INTO requests (request_id, account_id, operation, amount, fee, delta, balance_after, code, "
                "applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request_id, account_id, operation, amount, fee, after.balance - before.balance, after.balance,
                 code, now))
            return Applied(request_id, account_id, operation, amount, fee, after.balance, transactions, code)

    def open_account(self, account_id: str, balance: int = 0) -> None:
        """Create (or reset) an account with a starting balance, logged as an opening deposit."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM requests WHERE account_id = ?", (account_id,))
            conn.execute(
                "INSERT INTO accounts (account_id, balance, transactions, open, updated_at) VALUES (?, ?, 0, 1, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET balance = excluded.balance, transactions = 0, open = 1, "
                "updated_at = excluded.updated_at", (account_id, balance, _now()))
            if balance:
                conn.execute(
                    "INSERT INTO requests (request_id, account_id, operation, amount, fee, delta, balance_after, "
                    "code, applied_at) VALUES (?, ?, 'deposit', ?, 0, ?, ?, 'opening', ?)",
                    (f"{account_id}/opening", account_id, balance, balance, balance, _now()))

    # -- the careless way: read now, write later ---------------------------------------------------------

    def read_balance(self, account_id: str) -> int:
        """The balance right now (0 for an account never seen). Nothing stops it changing after we return."""
        with closing(self.connect()) as conn:
            row = conn.execute("SELECT balance FROM accounts WHERE account_id = ?", (account_id,)).fetchone()
        return row[0] if row else 0

    def write_balance(self, request_id: str, account_id: str, operation: str, amount: int, *,
                      old_balance: int, new_balance: int, code: str = "naive") -> None:
        """Overwrite the balance with a value computed elsewhere from `old_balance`, and log the request.

        Whatever changed the balance since `old_balance` was read is silently overwritten: a lost update.
        """
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM requests WHERE request_id = ?", (request_id,)).fetchone():
                return
            now = _now()
            conn.execute(
                "INSERT INTO accounts (account_id, balance, transactions, open, updated_at) VALUES (?, ?, 1, 1, ?) "
                "ON CONFLICT (account_id) DO UPDATE SET balance = excluded.balance, "
                "transactions = transactions + 1, updated_at = excluded.updated_at",
                (account_id, new_balance, now))
            conn.execute(
                "INSERT INTO requests (request_id, account_id, operation, amount, fee, delta, balance_after, code, "
                "applied_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)",
                (request_id, account_id, operation, amount, new_balance - old_balance, new_balance, code, now))

    # -- reading it back ---------------------------------------------------------------------------------

    def account(self, account_id: str) -> domain.Account | None:
        with closing(self.connect()) as conn:
            row = conn.execute("SELECT 1 FROM accounts WHERE account_id = ?", (account_id,)).fetchone()
            return self._load(conn, account_id) if row else None

    def balance(self, account_id: str) -> int | None:
        found = self.account(account_id)
        return None if found is None else found.balance

    def frame(self, accounts: list[str] | None = None) -> pd.DataFrame:
        """The accounts table as a pandas DataFrame (optionally only some accounts)."""
        with closing(self.connect()) as conn:
            frame = pd.read_sql_query(
                "SELECT account_id, balance, transactions, open, updated_at FROM accounts ORDER BY account_id", conn)
        frame["open"] = frame["open"].astype(bool)
        if accounts is not None:
            frame = frame[frame["account_id"].isin(accounts)].reset_index(drop=True)
        return frame

    def requests_frame(self, account_id: str | None = None, last: int | None = None) -> pd.DataFrame:
        """The request log, oldest first (optionally one account, optionally the last few)."""
        query = ("SELECT request_id, account_id, operation, amount, fee, delta, balance_after, code, applied_at "
                 "FROM requests")
        params: tuple = ()
        if account_id is not None:
            query += " WHERE account_id = ?"
            params = (account_id,)
        with closing(self.connect()) as conn:
            frame = pd.read_sql_query(query + " ORDER BY applied_at, rowid", conn, params=params)
        return frame.tail(last).reset_index(drop=True) if last else frame

    def audit(self, accounts: list[str] | None = None) -> pd.DataFrame:
        """Per account: the balance, what its logged requests add up to, and the difference (`off_by`)."""
        with closing(self.connect()) as conn:
            frame = pd.read_sql_query(
                "SELECT a.account_id, a.balance, COALESCE(SUM(r.delta), 0) AS logged, COUNT(r.request_id) AS requests "
                "FROM accounts a LEFT JOIN requests r USING (account_id) GROUP BY a.account_id ORDER BY a.account_id",
                conn)
        frame["off_by"] = frame["balance"] - frame["logged"]  # not 0: some logged request's change was overwritten
        frame["consistent"] = frame["off_by"] == 0
        if accounts is not None:
            frame = frame[frame["account_id"].isin(accounts)].reset_index(drop=True)
        return frame

    def consistent(self, accounts: list[str] | None = None) -> bool:
        return bool(self.audit(accounts)["consistent"].all())
