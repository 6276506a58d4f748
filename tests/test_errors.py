"""Every failure a learner can meet becomes one short sentence."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from tutorial.basics import Counter
from tutorial.errors import explain
from tutorial.server import WorkbookError
from tutorial.workshop import unique


def test_a_query_to_a_missing_workflow_says_not_found(run, client):
    with pytest.raises(RPCError) as err:
        run(client.get_workflow_handle(unique("nobody")).query(Counter.current))
    text = explain(err.value)
    assert text.startswith("Not found") and "\n" not in text


def test_plain_errors_are_one_line():
    assert explain(WorkbookError("Do X.")) == "Do X."
    assert explain(asyncio.TimeoutError()).startswith("Timed out")
    assert explain(ValueError("amount must be positive")) == "ValueError: amount must be positive"
    assert explain(RPCError("gone", RPCStatusCode.UNAVAILABLE, b"")).startswith("The Temporal server is not reachable")
