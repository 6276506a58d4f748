"""The entity every pattern notebook builds: a bank account.

Notebooks 01-05 build the same account four ways (one workflow per request with a database; an entity
workflow with signals and queries; the same with updates; and with continue-as-new), so the rules live here
once. This module is pure Python with no I/O, so workflows may import it inside the sandbox.

Amounts are whole units (int): no floats, so no rounding surprises in a lesson about state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

MAX_AMOUNT = 1_000_000
OPERATIONS = ("deposit", "withdraw")


class AccountError(ValueError):
    """A business rule said no (bad amount, not enough money, closed account). Not retryable."""


class InvalidAmount(AccountError):
    pass


class InsufficientFunds(AccountError):
    pass


class AccountClosed(AccountError):
    pass


@dataclass(frozen=True)
class Transaction:
    """One request to change an account. `request_id` makes retries and duplicates detectable."""

    operation: str  # "deposit" or "withdraw"
    amount: int
    request_id: str = ""


@dataclass(frozen=True)
class Account:
    """The account's state: what any pattern must keep right."""

    account_id: str
    balance: int = 0
    open: bool = True
    transactions: int = 0
    applied: tuple[str, ...] = field(default_factory=tuple)  # request ids, newest last (kept short)


def check_amount(amount: object) -> int:
    """An amount must be a whole number from 1 to MAX_AMOUNT."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(f"amount must be a whole number, not {amount!r}")
    if amount <= 0:
        raise InvalidAmount(f"amount must be positive, not {amount}")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"amount must be at most {MAX_AMOUNT:,}, not {amount:,}")
    return amount


def check_transaction(account: Account, txn: Transaction) -> None:
    """Raise AccountError if `txn` may not be applied to `account` (used by validators too)."""
    if txn.operation not in OPERATIONS:
        raise AccountError(f"operation must be one of {', '.join(OPERATIONS)}, not {txn.operation!r}")
    check_amount(txn.amount)
    if not account.open:
        raise AccountClosed(f"account {account.account_id} is closed")
    if txn.operation == "withdraw" and txn.amount > account.balance:
        raise InsufficientFunds(f"cannot withdraw {txn.amount}: balance is {account.balance}")


def apply(account: Account, txn: Transaction, keep_ids: int = 100) -> Account:
    """The new account after `txn` (the old one is unchanged); raises AccountError if not allowed."""
    check_transaction(account, txn)
    delta = txn.amount if txn.operation == "deposit" else -txn.amount
    if not txn.request_id:
        applied = account.applied
    else:  # keep the newest `keep_ids` (0 keeps none: [-0:] would keep them all)
        applied = (account.applied + (txn.request_id,))[-keep_ids:] if keep_ids > 0 else ()
    return replace(account, balance=account.balance + delta, transactions=account.transactions + 1, applied=applied)


def close(account: Account) -> Account:
    return replace(account, open=False)


def parse_amount(text: str) -> int:
    """What a form field holds, as an amount; a short ValueError for anything else (nothing gets sent)."""
    cleaned = (text or "").strip().replace("_", "").replace(",", "")
    if not cleaned:
        raise InvalidAmount("enter an amount")
    try:
        value = int(cleaned)
    except ValueError:
        raise InvalidAmount(f"amount must be a whole number, not {text.strip()!r}") from None
    return check_amount(value)


def parse_operation(text: str) -> str:
    op = (text or "").strip().lower()
    if op not in OPERATIONS:
        raise AccountError(f"operation must be one of {', '.join(OPERATIONS)}, not {text.strip()!r}")
    return op


def parse_account_id(text: str) -> str:
    cleaned = (text or "").strip()
    if not cleaned or len(cleaned) > 40 or not all(c.isalnum() or c in "-_" for c in cleaned):
        raise AccountError("account id: 1 to 40 letters, digits, - or _")
    return cleaned
