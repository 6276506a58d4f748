"""Every notebook as a learner meets it: JupyterLab in headless Chromium, run all cells, click the widgets.

nbval executes cells but never clicks a button and never sees the page. Here a real JupyterLab serves the
notebooks, Debian's Chromium (driven by Playwright, no downloaded browser) runs every cell, clicks each
notebook's main buttons, and checks that their result appears in the page without running another cell and
that no cell shows an error. A screenshot per notebook lands in build/screenshots/.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "build" / "screenshots"

# For each notebook: buttons to click, and the text each click must make appear in that button's output.
# The test runs every cell above the notebook's "Clean up" section (so workers run and entities are open),
# clicks, then runs the rest. "✔" is the widget kit's success mark.
CLICKS: dict[str, list[tuple[str, str]]] = {
    "setup_check.ipynb": [],
    "00_how_temporal_runs_your_code.ipynb": [
        ("add 1", "the counter now reads"),
        ("Start a Greet workflow", "Started"),
        ("Stop worker", "worker STOPPED"),
        ("Start worker", "worker RUNNING"),
    ],
    "01_workflow_per_request.ipynb": [("Send request", "✔")],
    "02_signals_and_queries.ipynb": [("Send", "✔"), ("Refresh view", "view refreshed"),
                                     ("Send a bad payload", "more rejected")],
    "03_workflow_update.ipynb": [("Send update", "✔")],
    "04_cache_eviction_and_replay.ipynb": [("Deposit 1 → A", "✔"), ("Restart worker", "✔")],
    "05_continue_as_new.ipynb": [("Set the threshold", "✔"), ("Send a burst", "✔"), ("Show the run chain", "✔")],
    "06_choosing_a_pattern.ipynb": [("Measure", "✔")],
}
CLEAN_UP_HEADING = "Clean up"

pytestmark = [pytest.mark.full, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not "
                                                 "installed (./workbook.sh test installs it)")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A fresh JupyterLab server (a reused one would reuse its kernels), with $HOME and Jupyter dirs in a temp dir."""
    home = tmp_path_factory.mktemp("lab-home")
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               XDG_CONFIG_HOME=str(home / "xdg-config"), XDG_CACHE_HOME=str(home / "xdg-cache"),
               WORKBOOK_LEARNER="browser")
    env.pop("TEMPORAL_ADDRESS", None)
    from tutorial.server import free_port

    # Serve copies: JupyterLab autosaves, and the committed notebooks must stay without outputs.
    served = home / "notebooks"
    shutil.copytree(ROOT / "notebooks", served, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    notebook_settings = settings.parent / "notebook-extension"
    notebook_settings.mkdir(parents=True)  # every cell in the DOM, so the test can find any of them
    (notebook_settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')

    port, token = free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).parent / "jupyter"
    process = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--notebook-dir={served}", "--ServerApp.disable_check_xsrf=True"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(home / "lab.log", "wb"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("JupyterLab did not start: " + (home / "lab.log").read_text()[-2000:])
    yield base, token, home
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def wait_idle(page, timeout_s: float) -> None:
    """Wait until the kernel exists and is idle (the toolbar says idle before a kernel even exists)."""
    page.wait_for_function(
        "() => /\\(ipykernel\\) \\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')",
        timeout=timeout_s * 1000)


def run_command(page, command: str, timeout_s: float = 240) -> None:
    """Run a Run-menu command (e.g. runmenu:run-all) and wait until no cell is still running."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click(timeout=10_000)
    page.click(f"li[data-command='{command}']", timeout=10_000)
    time.sleep(1)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-InputPrompt')].every(p => !p.innerText.includes('*'))",
        timeout=timeout_s * 1000)
    wait_idle(page, 60)


def select_clean_up(page) -> bool:
    """Select the notebook's "Clean up" heading cell; False if it has none."""
    heading = page.locator(f".jp-NotebookPanel:visible .jp-MarkdownCell h2:has-text('{CLEAN_UP_HEADING}')")
    if heading.count() == 0:
        return False
    heading.first.scroll_into_view_if_needed()
    heading.first.click()
    page.keyboard.press("Escape")  # command mode, the cell stays selected
    return True


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def assert_no_error(page, name: str) -> None:
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, f"{name}: a cell shows an error: {errors.first.inner_text()[:1500]}"


# one xdist group per notebook: notebooks run in parallel, each worker with its own JupyterLab
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"browser-{n}")) for n in NOTEBOOKS])
def test_notebook_in_jupyterlab(lab, browser, name):
    base, token, _home = lab
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        # a workspace of its own, so that tabs of earlier notebooks are not restored beside this one
        page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}", timeout=60_000)
        wait_idle(page, 90)
        started = time.monotonic()
        has_clean_up = select_clean_up(page)
        run_command(page, "notebook:run-all-above" if has_clean_up else "runmenu:run-all")
        print(f"{name}: cells ran in the browser in {time.monotonic() - started:.1f} s")
        assert_no_error(page, name)
        for label, expected in CLICKS.get(name, []):
            button = page.locator(f".jp-NotebookPanel:visible button.jupyter-button:has-text('{label}')").first
            button.scroll_into_view_if_needed()
            area = button.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]")
            button.click()
            clicked = time.monotonic()
            try:
                page.wait_for_function(
                    "([el, text]) => { const outs = el.querySelectorAll('.jp-OutputArea-output');"
                    " const last = outs.length ? outs[outs.length - 1].innerText : '';"
                    " return last.includes(text) && !last.includes('✖'); }",
                    arg=[area.element_handle(), expected], timeout=180_000)
            except Exception:
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / f"{Path(name).stem}-FAILED.png"))
                raise AssertionError(f"{name}: clicking {label!r} did not show {expected!r}; "
                                     f"it showed: {area.inner_text()[:500]!r}") from None
            print(f"  clicked {label!r}: {expected!r} appeared after {time.monotonic() - clicked:.2f} s")
        SHOTS.mkdir(parents=True, exist_ok=True)  # what a learner sees right after the clicks
        page.screenshot(path=str(SHOTS / f"{Path(name).stem}.png"), full_page=False)
        if has_clean_up:
            select_clean_up(page)
            run_command(page, "notebook:run-all-below")
            assert_no_error(page, name)
        unknown = set(CLICKS) - set(NOTEBOOKS)
        assert not unknown, f"CLICKS names notebooks that do not exist: {unknown}"
    finally:
        # shut the kernel down so its dev server ends with it
        page.evaluate("async () => { for (const k of await (await fetch('/api/kernels')).json()) "
                      "await fetch('/api/kernels/' + k.id, {method: 'DELETE'}); }")
        context.close()
