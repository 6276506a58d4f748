import pytest

from tutorial.workflows import domain
from tutorial.workflows.domain import Account, Transaction


def test_deposit_and_withdraw_change_the_balance():
    acc = domain.apply(Account("a"), Transaction("deposit", 50, "r1"))
    acc = domain.apply(acc, Transaction("withdraw", 20, "r2"))
    assert acc.balance == 30 and acc.transactions == 2 and acc.applied == ("r1", "r2")


@pytest.mark.parametrize("amount", [0, -5, 1.5, "10", True, domain.MAX_AMOUNT + 1])
def test_bad_amounts_are_rejected(amount):
    with pytest.raises(domain.InvalidAmount):
        domain.apply(Account("a"), Transaction("deposit", amount))


def test_overdraft_and_closed_accounts_are_rejected():
    with pytest.raises(domain.InsufficientFunds):
        domain.apply(Account("a", balance=5), Transaction("withdraw", 6))
    with pytest.raises(domain.AccountClosed):
        domain.apply(domain.close(Account("a")), Transaction("deposit", 1))


@pytest.mark.parametrize("text,message", [("", "enter an amount"), ("ten", "whole number"), ("-3", "positive"),
                                          ("2.5", "whole number")])
def test_form_text_gets_a_short_message(text, message):
    with pytest.raises(domain.InvalidAmount, match=message):
        domain.parse_amount(text)


def test_form_text_that_is_fine():
    assert domain.parse_amount(" 1,000 ") == 1000
    assert domain.parse_operation("Deposit") == "deposit"
    assert domain.parse_account_id("acc-1") == "acc-1"
    with pytest.raises(domain.AccountError):
        domain.parse_account_id("no spaces please")


def test_keep_ids_zero_keeps_no_request_id():
    account = domain.apply(Account("a"), Transaction("deposit", 5, "r1"), keep_ids=0)
    assert account.applied == () and account.balance == 5
    assert domain.apply(account, Transaction("deposit", 5, "r2"), keep_ids=1).applied == ("r2",)
