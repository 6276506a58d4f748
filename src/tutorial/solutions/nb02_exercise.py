# Solution to the exercise of notebook 02 (load it into the exercise cell with %load).
from tutorial.workflows import domain
from tutorial.entity_signals import AccountEntity, payload, query_until


async def deposit_and_confirm(handle, amount, request_id, timeout=5.0):
    """Deposit `amount` and return the new balance once the account has applied it.

    A signal returns nothing, so we ask: query `outcome(request_id)` again until the account has seen the
    request. "applied" -> return the balance; "rejected: ..." -> raise domain.AccountError with the reason;
    nothing within `timeout` seconds -> TimeoutError (query_until raises it).
    """
    await handle.signal(AccountEntity.deposit, payload(amount, request_id))
    seen = await query_until(lambda: handle.query(AccountEntity.outcome, request_id), lambda outcome: outcome != "",
                             timeout=timeout)
    if seen.value != "applied":
        raise domain.AccountError(seen.value)
    return await handle.query(AccountEntity.balance)
