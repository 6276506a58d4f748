"""What a click costs where learners click: in a Jupyter kernel, paired with the raw SDK call (issue 18, item 4).

Outside a kernel a widget has no front end to talk to, so a terminal run's helpers figure leaves out the widget
messages a click sends (each trait change is a message on the kernel's iopub channel). `in_kernel(address)`
starts a real ipykernel (jupyter_client), runs the benchmark's paired measurement there against the same server
(`measure.paired_clicks`: the update through `widgets.ActionForm.submit` and through the raw SDK, interleaved),
counts the widget messages (`comm_msg`) the kernel sent meanwhile, and returns a `ClickCost`. The kernel is shut
down before it returns; if this process dies first, ipykernel's parent poller ends it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field

from ..errors import WorkbookError
from .model import HELPER_LIMIT, percentile

KERNEL_TIMEOUT_S = 120.0
_MARK = "CLICK-COST "

_CODE = """
import json
from tutorial import server
from tutorial.bench import measure
_client = await server.connect(quiet=True)
_raw, _helper = await measure.paired_clicks(_client, n={n}, warmup={warmup})
print({mark!r} + json.dumps({{"raw": _raw.samples_ms, "helper": _helper.samples_ms, "own": _helper.own_ms}}))
"""


@dataclass
class ClickCost:
    """The same update, raw and through a form click, interleaved in one kernel; the widget messages sent."""

    raw_ms: list[float]
    helper_ms: list[float]
    clicks: int  # clicks made, warm-up included
    widget_messages: int  # comm_msg messages on iopub during them
    own_ms: list[float] = field(default_factory=list)  # each click's time outside the update (the kit's own work)

    @property
    def overhead_ms(self) -> float:
        """Median of (click - raw) over the pairs: what a click adds, with the machine's drift cancelled."""
        return percentile([h - r for h, r in zip(self.helper_ms, self.raw_ms)], 50)

    @property
    def overhead(self) -> float:
        return self.overhead_ms / percentile(self.raw_ms, 50)

    @property
    def within_budget(self) -> bool:
        return self.overhead < HELPER_LIMIT - 1

    @property
    def own_p50_ms(self) -> float:
        """Median of each click's time outside the update: what the widget kit itself does, without the network's
        noise that the paired figure carries."""
        return percentile(self.own_ms, 50)

    @property
    def messages_per_click(self) -> float:
        return self.widget_messages / self.clicks if self.clicks else float("nan")

    def line(self) -> str:
        verdict = ("within" if self.within_budget else "OVER") + f" the {HELPER_LIMIT - 1:.0%} budget"
        return (f"a click in a Jupyter kernel: update via ActionForm.submit p50 {percentile(self.helper_ms, 50):.2f} "
                f"ms, raw SDK {percentile(self.raw_ms, 50):.2f} ms; the click adds {self.overhead_ms:+.2f} ms = "
                f"{self.overhead:+.1%} (median of {len(self.raw_ms)} interleaved pairs): {verdict}; its own time "
                f"outside the update {self.own_p50_ms:.2f} ms (p50) = {self.own_p50_ms / percentile(self.raw_ms, 50):.1%}"
                f", {self.messages_per_click:.1f} widget messages per click")


def _measure(address: str, namespace: str, n: int, warmup: int) -> ClickCost:
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="bench-kernel-") as runtime:
        env = {**os.environ, "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": namespace,
               "JUPYTER_RUNTIME_DIR": runtime, "MPLBACKEND": "Agg"}
        manager = KernelManager(kernel_name="python3")
        # its own stdout and stderr (ipykernel's start-up warnings) are noise here: what it says comes on iopub
        manager.start_kernel(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            kernel = manager.client()
            kernel.start_channels()
            kernel.wait_for_ready(timeout=60)
            seen = {"comm_msg": 0, "out": "", "error": ""}

            def hook(msg) -> None:
                kind = msg["msg_type"]
                if kind == "comm_msg":
                    seen["comm_msg"] += 1
                elif kind == "stream":
                    seen["out"] += msg["content"]["text"]
                elif kind == "error":
                    seen["error"] = f"{msg['content']['ename']}: {msg['content']['evalue']}"

            kernel.execute_interactive(_CODE.format(n=n, warmup=warmup, mark=_MARK), output_hook=hook,
                                       timeout=KERNEL_TIMEOUT_S)
            kernel.stop_channels()
        finally:
            manager.shutdown_kernel(now=True)
    line = next((ln for ln in seen["out"].splitlines() if ln.startswith(_MARK)), None)
    if line is None:
        raise WorkbookError(f"the click measurement in a Jupyter kernel failed: {seen['error'] or seen['out'][-300:]}")
    figures = json.loads(line.removeprefix(_MARK))
    return ClickCost(figures["raw"], figures["helper"], clicks=n + warmup, widget_messages=seen["comm_msg"],
                     own_ms=figures["own"])


async def in_kernel(address: str, namespace: str = "default", *, n: int = 100, warmup: int = 5) -> ClickCost:
    """The paired click cost measured in a fresh Jupyter kernel against the server at `address` (in a thread,
    so this loop's worker keeps running)."""
    return await asyncio.to_thread(_measure, address, namespace, n, warmup)
