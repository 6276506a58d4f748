"""One way to turn a business rule's "no" into a Temporal failure.

A rule that says no (not enough money, a closed account) will say no again on a retry, so it must not be
retried: it becomes a non-retryable `ApplicationError` whose type is the rule's exception class. Raised from
an activity it fails the activity for good; from a workflow it fails the workflow; from an update handler it
fails that update only. BENIGN: an expected outcome, so the worker does not log it as a failure.
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, ApplicationErrorCategory

from .domain import AccountError


def business_failure(err: AccountError) -> ApplicationError:
    """`err` as a non-retryable ApplicationError of type `type(err).__name__`; raise it `from None`."""
    return ApplicationError(str(err), type=type(err).__name__, non_retryable=True,
                            category=ApplicationErrorCategory.BENIGN)


def passed_on(err: ActivityError) -> BaseException:
    """What a workflow re-raises when an activity failed for good: the activity's own business failure,
    unwrapped (the caller reads "InsufficientFunds", not "activity failed"), or the ActivityError itself."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return ApplicationError(cause.message, type=cause.type, non_retryable=True, category=cause.category)
    return err
