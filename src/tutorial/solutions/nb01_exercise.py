def withdraw_once(conn, account_id: str, amount: int) -> bool:
    """Take `amount` from the account only if the balance allows it, in ONE SQL statement; True if it did.

    The check (`balance >= ?`) and the change (`balance - ?`) happen in the same UPDATE, so SQLite does both
    under its write lock: no other request can change the balance in between, and none can overdraw it.
    """
    cursor = conn.execute(
        "UPDATE accounts SET balance = balance - ?, transactions = transactions + 1 "
        "WHERE account_id = ? AND balance >= ?",
        (amount, account_id, amount),
    )
    return cursor.rowcount == 1
