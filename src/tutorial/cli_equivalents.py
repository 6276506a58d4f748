"""The `temporal` command beside each client call: the same request, made from a terminal.

`recording(client)` returns the same client (same connection) with one interceptor more: every start, signal,
query, update, signal-with-start, update-with-start, describe, history fetch, cancel and terminate it sends is also
turned into the `temporal workflow ...` command line that sends the same request to the same server, built from
what the SDK call carried (names resolved by the SDK, inputs rendered by its payload converter). `echo(kind)`
prints the latest one under a cell's call. Nothing is typed by hand, so the line cannot drift from the code.

What the CLI cannot say is left out, never faked: a terminate's details (`terminate("text")` sends details, not
a reason; the line carries `--reason` only when the call gave `reason=`), rpc timeouts, headers, a payload codec
(the line carries the payload converter's JSON).

The connection flags name the server this kernel uses (`server.server_info()`): the address and namespace, and
TLS and the API key when `connection` configured them. A secret is never printed: the key appears as
`"$TEMPORAL_API_KEY"` (or, when it came from a profile file, as `--profile NAME`: the CLI reads the same file).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import temporalio.converter
from temporalio.api.common.v1 import Payload
from temporalio.client import (CancelWorkflowInput, Client, DescribeWorkflowInput, FetchWorkflowHistoryEventsInput,
                               Interceptor, OutboundInterceptor, QueryWorkflowInput, SignalWorkflowInput,
                               StartWorkflowInput, StartWorkflowUpdateInput, StartWorkflowUpdateWithStartInput,
                               TerminateWorkflowInput, WorkflowHistoryEventFilterType, WorkflowUpdateStage)
from temporalio.common import QueryRejectCondition, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from . import server
from .errors import WorkbookError

KINDS = ("start", "signal", "query", "update", "signal-with-start", "update-with-start", "describe", "show",
         "cancel", "terminate")
RUN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EnvRef:
    """A value the shell fills in from an environment variable: how a secret appears in a printed line."""

    name: str


@dataclass(frozen=True)
class Command:
    """One `temporal` command line: its kind (one of KINDS) and its words, secrets as `EnvRef`s."""

    kind: str
    words: tuple[str | EnvRef, ...]

    @property
    def line(self) -> str:
        """What a learner copies into a terminal (bash): `temporal workflow ...`."""
        return " ".join(f'"${w.name}"' if isinstance(w, EnvRef) else shlex.quote(w) for w in self.words)

    def __str__(self) -> str:
        return f"$ {self.line}"

    def value(self, flag: str) -> str | None:
        """The value given to `flag` (the first time), e.g. value("--workflow-id")."""
        words = list(self.words)
        if flag in words and words.index(flag) + 1 < len(words):
            found = words[words.index(flag) + 1]
            return found if isinstance(found, str) else f"${found.name}"
        return None

    def with_value(self, flag: str, new: str) -> "Command":
        """The same command with `flag`'s value replaced (say, another workflow id)."""
        words = list(self.words)
        if flag not in words:
            raise ValueError(f"{self.kind} command has no {flag}")
        words[words.index(flag) + 1] = new
        return replace(self, words=tuple(words))

    async def run(self, *, json_output: bool = False, timeout: float = RUN_TIMEOUT_S,
                  env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
        """Run the printed line in bash (so `"$TEMPORAL_API_KEY"` is filled in as in a terminal), with the
        workbook's `temporal` first on PATH; (exit code, stdout, stderr). `json_output` appends `-o json`;
        `env` changes this process's environment for the command (None removes a variable).
        Asynchronous: a worker in this event loop must go on answering while the command waits for it."""
        line = self.line + (" -o json" if json_output else "")
        full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
        full_env["PATH"] = str(Path(server.temporal_binary()).parent) + os.pathsep + full_env.get("PATH", "")
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", line, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=full_env)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise WorkbookError(f"the `{self.kind}` command gave no answer within {timeout:g} s") from None
        return process.returncode, out.decode(), err.decode()

    async def json(self, *, timeout: float = RUN_TIMEOUT_S, env: dict[str, str | None] | None = None) -> Any:
        """Run with `-o json` and return the parsed answer; a failed command is one line saying why."""
        code, out, err = await self.run(json_output=True, timeout=timeout, env=env)
        if code != 0:
            raise WorkbookError(f"the `{self.kind}` command failed: {_first_line(err or out)}")
        return json.loads(out) if out.strip() else None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no output)"


# ---------------------------------------------------------------- the words of a command


def connection_words(info: server.ServerInfo | None = None) -> list[str | EnvRef]:
    """`--address ... --namespace ...`, then what TLS and an API key need, never a secret itself."""
    info = info or server.server_info()
    words: list[str | EnvRef] = ["--address", info.address, "--namespace", info.namespace]
    if info.embedded:
        return words
    args, env = info.connect_args, os.environ
    from_profile = bool(args.get("rpc_metadata"))  # gRPC metadata may hold a secret: the profile names it
    if args.get("tls"):
        words.append("--tls")
        tls = _configured_tls()
        for flag, source, data_var in (
                ("--tls-ca", getattr(tls, "server_root_ca_cert", None), "TEMPORAL_TLS_SERVER_CA_CERT_DATA"),
                ("--tls-cert", getattr(tls, "client_cert", None), "TEMPORAL_TLS_CLIENT_CERT_DATA"),
                ("--tls-key", getattr(tls, "client_private_key", None), "TEMPORAL_TLS_CLIENT_KEY_DATA")):
            if isinstance(source, Path):
                words += [f"{flag}-path", str(source)]
            elif source is not None and env.get(data_var):
                words += [f"{flag}-data", EnvRef(data_var)]
            elif source is not None:
                from_profile = True
        if getattr(tls, "server_name", None):
            words += ["--tls-server-name", tls.server_name]
    if args.get("api_key"):
        if env.get("TEMPORAL_API_KEY") == args["api_key"]:
            words += ["--api-key", EnvRef("TEMPORAL_API_KEY")]
        else:
            from_profile = True
    if from_profile:
        words += ["--profile", env.get("TEMPORAL_PROFILE") or "default"]
        if env.get("TEMPORAL_CONFIG_FILE"):
            words += ["--config-file", env["TEMPORAL_CONFIG_FILE"]]
    return words


def _configured_tls():
    """The TLS settings as the environment configuration names them (paths, not the bytes connect got)."""
    from temporalio.envconfig import ClientConfigProfile

    try:
        return ClientConfigProfile.load().tls
    except Exception:  # noqa: BLE001 - connection.configured() already said what is wrong with the config
        return None


def input_words(flag: str, args: Sequence[Any],
                converter: temporalio.converter.PayloadConverter | None = None) -> list[str]:
    """One `flag JSON` pair per argument, rendered by the SDK's payload converter (dataclasses become JSON
    objects exactly as the SDK sends them)."""
    converter = converter or temporalio.converter.DataConverter.default.payload_converter
    words: list[str] = []
    for payload in converter.to_payloads(list(args)):
        words += [flag, _payload_json(payload)]
    return words


def _payload_json(payload: Payload) -> str:
    encoding = payload.metadata.get("encoding", b"").decode()
    if encoding == "json/plain":
        return payload.data.decode()
    if encoding == "binary/null":
        return "null"
    raise WorkbookError(f"an argument encoded as {encoding or 'unknown'} has no JSON form for the `temporal` CLI")


def _target(workflow_id: str, run_id: str | None) -> list[str]:
    return ["--workflow-id", workflow_id] + (["--run-id", run_id] if run_id else [])


REUSE = {WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY: "AllowDuplicateFailedOnly",
         WorkflowIDReusePolicy.REJECT_DUPLICATE: "RejectDuplicate",
         WorkflowIDReusePolicy.TERMINATE_IF_RUNNING: "TerminateIfRunning"}  # ALLOW_DUPLICATE: both defaults
CONFLICT = {WorkflowIDConflictPolicy.FAIL: "Fail", WorkflowIDConflictPolicy.USE_EXISTING: "UseExisting",
            WorkflowIDConflictPolicy.TERMINATE_EXISTING: "TerminateExisting"}
REJECT = {QueryRejectCondition.NOT_OPEN: "not_open",
          QueryRejectCondition.NOT_COMPLETED_CLEANLY: "not_completed_cleanly"}


def _start_words(start, converter) -> list[str]:
    """What starting a workflow needs, for start, signal-with-start and update-with-start alike."""
    words = ["--type", start.workflow, "--task-queue", start.task_queue, "--workflow-id", start.id]
    words += input_words("--input", start.args, converter)
    if start.id_reuse_policy in REUSE:
        words += ["--id-reuse-policy", REUSE[start.id_reuse_policy]]
    if start.id_conflict_policy in CONFLICT:
        words += ["--id-conflict-policy", CONFLICT[start.id_conflict_policy]]
    for flag, value in (("--execution-timeout", start.execution_timeout), ("--run-timeout", start.run_timeout),
                        ("--task-timeout", start.task_timeout)):
        if value is not None:
            words += [flag, f"{value.total_seconds():g}s"]
    return words


@dataclass(frozen=True)
class Request:
    """What one call asked for, in the CLI's words; the connection flags join when it becomes a `Command`."""

    kind: str
    subcommand: tuple[str, ...]
    words: tuple[str, ...]

    def command(self, info: server.ServerInfo | None = None) -> Command:
        return Command(self.kind, ("temporal", "workflow", *self.subcommand, *connection_words(info), *self.words))


def command_for(call: Any, *, info: server.ServerInfo | None = None,
                converter: temporalio.converter.PayloadConverter | None = None) -> Command | None:
    """The command for one intercepted client call (an SDK interceptor input), or None if it has none here
    (a history read that is part of `result()`, or a later page of a history)."""
    found = request_for(call, converter)
    return found.command(info) if found else None


def request_for(call: Any, converter: temporalio.converter.PayloadConverter | None = None) -> Request | None:
    """The CLI's words for one call (an argument with no JSON form: a `WorkbookError` saying so)."""

    def request(kind: str, sub: Sequence[str], *words: str) -> Request:
        return Request(kind, tuple(sub), tuple(words))

    if isinstance(call, StartWorkflowInput):
        if call.start_signal:
            return request("signal-with-start", ["signal-with-start"], *_start_words(call, converter),
                           "--signal-name", call.start_signal,
                           *input_words("--signal-input", call.start_signal_args, converter))
        return request("start", ["start"], *_start_words(call, converter))
    if isinstance(call, SignalWorkflowInput):
        return request("signal", ["signal"], *_target(call.id, call.run_id), "--name", call.signal,
                       *input_words("--input", call.args, converter))
    if isinstance(call, QueryWorkflowInput):
        reject = ["--reject-condition", REJECT[call.reject_condition]] if call.reject_condition in REJECT else []
        return request("query", ["query"], *_target(call.id, call.run_id), "--name", call.query,
                       *input_words("--input", call.args, converter), *reject)
    if isinstance(call, StartWorkflowUpdateInput):
        completed = call.wait_for_stage == WorkflowUpdateStage.COMPLETED
        return request("update", ["update", "execute" if completed else "start"],
                       *([] if completed else ["--wait-for-stage", "accepted"]),
                       *_target(call.id, call.run_id), "--name", call.update,
                       *input_words("--input", call.args, converter),
                       *(["--update-id", call.update_id] if call.update_id else []))
    if isinstance(call, StartWorkflowUpdateWithStartInput):
        update = call.update_workflow_input
        completed = update.wait_for_stage == WorkflowUpdateStage.COMPLETED
        sub = "execute-update-with-start" if completed else "start-update-with-start"
        return request("update-with-start", [sub],
                       *_start_words(call.start_workflow_input, converter),
                       "--update-name", update.update, *input_words("--update-input", update.args, converter),
                       *(["--update-id", update.update_id] if update.update_id else []),
                       *([] if completed else ["--update-wait-for-stage", "accepted"]))
    if isinstance(call, DescribeWorkflowInput):
        return request("describe", ["describe"], *_target(call.id, call.run_id))
    if isinstance(call, FetchWorkflowHistoryEventsInput):
        if call.wait_new_event or call.next_page_token or call.event_filter_type != \
                WorkflowHistoryEventFilterType.ALL_EVENT:
            return None  # waiting for the result, or the next page of a history already shown
        return request("show", ["show"], *_target(call.id, call.run_id))
    if isinstance(call, CancelWorkflowInput):
        return request("cancel", ["cancel"], *_target(call.id, call.run_id))  # (--reason is for batches only)
    if isinstance(call, TerminateWorkflowInput):
        return request("terminate", ["terminate"], *_target(call.id, call.run_id),
                       *(["--reason", call.reason] if call.reason else []))
    return None


# ---------------------------------------------------------------- recording a client's calls


KIND_OF = {StartWorkflowInput: "start", SignalWorkflowInput: "signal", QueryWorkflowInput: "query",
           StartWorkflowUpdateInput: "update", StartWorkflowUpdateWithStartInput: "update-with-start",
           DescribeWorkflowInput: "describe", FetchWorkflowHistoryEventsInput: "show", CancelWorkflowInput: "cancel",
           TerminateWorkflowInput: "terminate"}


@dataclass
class Recorder:
    """The latest call of each kind a recording client made. Recording costs a dictionary write per call; the
    words are worked out only when a line is shown (a notebook that measures latency measures the SDK)."""

    converter: temporalio.converter.PayloadConverter
    calls: dict[str, Any] = field(default_factory=dict)

    def record(self, call: Any) -> None:
        kind = KIND_OF.get(type(call))
        if kind == "start" and call.start_signal:
            kind = "signal-with-start"
        if kind == "show" and (call.wait_new_event or call.next_page_token
                               or call.event_filter_type != WorkflowHistoryEventFilterType.ALL_EVENT):
            return  # waiting for a result, or the next page of a history already recorded
        if kind:
            self.calls[kind] = call

    def command(self, kind: str) -> Command:
        return command_for(self.calls[kind], converter=self.converter)


class _Recording(Interceptor):
    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _RecordingOutbound(next, self.recorder)


class _RecordingOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, recorder: Recorder):
        super().__init__(next)
        self.recorder = recorder

    async def start_workflow(self, input):
        self.recorder.record(input)
        return await super().start_workflow(input)

    async def signal_workflow(self, input):
        self.recorder.record(input)
        return await super().signal_workflow(input)

    async def query_workflow(self, input):
        self.recorder.record(input)
        return await super().query_workflow(input)

    async def start_workflow_update(self, input):
        self.recorder.record(input)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(self, input):
        self.recorder.record(input)
        return await super().start_update_with_start_workflow(input)

    async def describe_workflow(self, input):
        self.recorder.record(input)
        return await super().describe_workflow(input)

    def fetch_workflow_history_events(self, input):
        self.recorder.record(input)
        return super().fetch_workflow_history_events(input)

    async def cancel_workflow(self, input):
        self.recorder.record(input)
        return await super().cancel_workflow(input)

    async def terminate_workflow(self, input):
        self.recorder.record(input)
        return await super().terminate_workflow(input)


_recorder: Recorder | None = None


def recording(client: Client) -> Client:
    """The same client (same connection, namespace, converter) whose calls also become `temporal` commands.
    Calling it again on a recording client returns that client: a cell can run twice."""
    global _recorder
    config = client.config()
    if any(isinstance(i, _Recording) for i in config["interceptors"]):
        return client
    _recorder = Recorder(converter=client.data_converter.payload_converter)
    config["interceptors"] = [*config["interceptors"], _Recording(_recorder)]
    return Client(**config)


def recorder(client: Client | None = None) -> Recorder:
    """The recorder of `client` (or of the last client `recording` made)."""
    if client is not None:
        for interceptor in client.config()["interceptors"]:
            if isinstance(interceptor, _Recording):
                return interceptor.recorder
        raise WorkbookError("this client records no commands: make it with `cli_equivalents.recording(client)`")
    if _recorder is None:
        raise WorkbookError("no client records commands yet: run `client = cli.recording(client)` first")
    return _recorder


def latest(*kinds: str, client: Client | None = None) -> list[Command]:
    """The command of the latest call of each kind (the call a cell just made, when the line sits under it)."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {', '.join(map(repr, unknown))}")
    found = recorder(client)
    missing = [k for k in kinds if k not in found.calls]
    if missing:
        raise WorkbookError(f"no {' or '.join(missing)} call recorded yet: make the call first, then show its "
                            "command")
    return [found.command(k) for k in kinds]


def echo(*kinds: str, client: Client | None = None) -> None:
    """Print the `temporal` command of the latest call of each kind, one copyable line each."""
    for command in latest(*kinds, client=client):
        print(command)
