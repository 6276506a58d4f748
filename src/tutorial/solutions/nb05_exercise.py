# Notebook 05 exercise, one solution: a withdrawal that survives continue-as-new.
# Load it into the notebook with:  %load ../src/tutorial/solutions/nb05_exercise.py
from temporalio.client import WorkflowUpdateFailedError

from tutorial.workflows.domain import Transaction


async def withdraw_safely(handle, txn: Transaction, attempts: int = 3) -> int:
    """Withdraw through the `withdraw` update and return the balance right after it.

    If the run closed under the update (a continue-as-new that did not wait for its handlers), send the
    *same* transaction again. The handle names the workflow id only, so the retry reaches the new run; the
    request id tells the entity it already took this money, so it answers without withdrawing twice.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await handle.execute_update("withdraw", txn, result_type=int)
        except WorkflowUpdateFailedError as err:
            run_closed_under_it = "AcceptedUpdateCompletedWorkflow" in str(err.cause)
            if not run_closed_under_it or attempt == attempts:
                raise  # a real refusal (for example: not enough money) is not retried
    raise AssertionError("unreachable")
