# Solution to the exercise of notebook 02 (load it into the exercise cell with %load).
from tutorial import polling
from tutorial.workflows import domain
from tutorial.workflows.signal_account import SignalAccount, payload


async def deposit_and_confirm(handle, amount, request_id, timeout=5.0):
    """Deposit `amount` and return the new balance once the account has applied it.

    A signal returns nothing, so we ask: query `outcome(request_id)` again until the account has seen the
    request. "applied" -> return the balance; "rejected: ..." -> raise domain.AccountError with the reason;
    nothing within `timeout` seconds -> polling.until raises polling.GaveUp, which is a TimeoutError.
    """
    await handle.signal(SignalAccount.deposit, payload(amount, request_id))
    seen = await polling.until(lambda: handle.query(SignalAccount.outcome, request_id),
                               lambda outcome: outcome != "", timeout=timeout,
                               gave_up=f"request {request_id!r} was not confirmed (is a worker running?)")
    if seen.value != "applied":
        raise domain.AccountError(seen.value)
    return await handle.query(SignalAccount.balance)
