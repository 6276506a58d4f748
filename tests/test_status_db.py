"""The SQLite status store of notebook 01: one transaction per request, all or nothing, never applied twice."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from tutorial.workflows import domain
from tutorial.status_db import StatusDB


@pytest.fixture
def db(tmp_path):
    return StatusDB(tmp_path / "bank.sqlite")


def test_the_schema_is_created_on_first_use(db):
    assert not db.exists() and db.tables() == []
    applied = db.apply("r1", "alice", "deposit", 100)
    assert db.exists() and db.tables() == ["accounts", "requests"]
    assert applied.balance == 100 and applied.transactions == 1 and not applied.duplicate
    frame = db.frame()
    assert list(frame["account_id"]) == ["alice"] and int(frame["balance"][0]) == 100


def test_a_withdrawal_and_a_fee_are_logged_with_the_change(db):
    db.apply("r1", "alice", "deposit", 100)
    applied = db.apply("r2", "alice", "withdraw", 30, fee=2, code="v2")
    assert applied.balance == 68 and applied.fee == 2 and applied.code == "v2"
    log = db.requests_frame("alice")
    assert list(log["delta"]) == [100, -32] and list(log["balance_after"]) == [100, 68]
    assert db.consistent()


def test_a_refused_request_writes_nothing(db):
    with pytest.raises(domain.InsufficientFunds):
        db.apply("r0", "ghost", "withdraw", 5)
    assert db.account("ghost") is None, "a refused request on a new account must not create it"
    db.apply("r1", "alice", "deposit", 10)
    before_log = len(db.requests_frame())
    with pytest.raises(domain.InsufficientFunds, match="10 plus a fee of 2: balance is 10"):
        db.apply("r2", "alice", "withdraw", 10, fee=2)  # 10 would fit, 10 plus the fee does not: all or nothing
    with pytest.raises(domain.InvalidAmount):
        db.apply("r3", "alice", "deposit", -4)
    assert db.balance("alice") == 10 and len(db.requests_frame()) == before_log


def test_a_repeated_request_id_is_applied_once(db):
    first = db.apply("same", "alice", "deposit", 40)
    again = db.apply("same", "alice", "deposit", 40)  # what a retried activity does after a lost reply
    assert again.duplicate and again.balance == first.balance == 40
    assert db.balance("alice") == 40 and len(db.requests_frame()) == 1


def _at_once(n, fn):
    barrier = threading.Barrier(n)
    errors = []

    def go(i):
        barrier.wait()
        try:
            fn(i)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_read_then_write_loses_updates_and_one_transaction_does_not(db):
    db.open_account("naive", 0)
    db.open_account("sound", 0)

    def careless(i):
        old = db.read_balance("naive")
        time.sleep(0.02)  # the gap between two activities
        db.write_balance(f"n{i}", "naive", "deposit", 1, old_balance=old, new_balance=old + 1)

    assert _at_once(20, careless) == []
    assert _at_once(20, lambda i: db.apply(f"s{i}", "sound", "deposit", 1)) == []
    audit = db.audit().set_index("account_id")
    print(audit)
    assert db.balance("sound") == 20 and audit.loc["sound", "off_by"] == 0
    assert db.balance("naive") < 20 and audit.loc["naive", "off_by"] == db.balance("naive") - 20


def test_a_locked_database_is_a_quick_transient_error(tmp_path):
    path = tmp_path / "locked.sqlite"
    StatusDB(path).open_account("alice", 5)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.perf_counter()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            StatusDB(path, busy_timeout=0.2).apply("r1", "alice", "deposit", 1)
        assert time.perf_counter() - started < 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert StatusDB(path).apply("r1", "alice", "deposit", 1).balance == 6


def test_drop_starts_empty(db):
    db.apply("r1", "alice", "deposit", 1)
    db.drop()
    assert not db.exists()
    assert db.frame().empty and db.tables() == ["accounts", "requests"]
