from temporalio.client import WorkflowHandle

from tutorial.workflows.update_account import UpdateAccount


async def deposit_once(handle: WorkflowHandle, amount: int, request_id: str) -> int:
    """Deposit `amount` and return the new balance; a retry with the same request_id deposits nothing more.

    The update id is the key: the server runs an update id at most once per workflow run, and a second
    request with the same id gets the first one's result instead of running the handler again.
    """
    return await handle.execute_update(UpdateAccount.deposit, amount, id=request_id)
