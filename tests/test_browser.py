"""Every notebook as a learner meets it: JupyterLab in headless Chromium, run all cells, click the widgets.

nbval executes cells but never clicks a button and never sees the page. Here a real JupyterLab serves the
notebooks, Debian's Chromium (driven by Playwright, no downloaded browser) runs all cells (the clean-up too, as
a learner's Run All does), then clicks each widget the notebook lists and checks that a result (not a time-out,
"Not found" or a closed entity) appears in the page without running another cell, and that no cell shows an
error. A screenshot per click lands in build/screenshots/.

JupyterLab runs under a base URL, as on JupyterHub (`/user/browser/`), and its notebooks share its one dev
server (`tutorial.jupyter_proxy`): a notebook's Web UI link, clicked, opens that workflow's page with its
events through Jupyter's own URL, and the UI's list shows the workflows of two notebooks.
"""

from __future__ import annotations

import json
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
BASE_PATH = "/user/browser/"  # a JupyterHub-like prefix: every link the workbook prints must carry it
UI_LINK_TEXT = "in the Temporal Web UI"  # history.ui_link's text: "Open <id> in the Temporal Web UI"

# What to click after Run All, and what each answer must show: the notebook's own metadata, `workbook.clicks`
# (the twice-run test clicks the same list in a kernel). "✔" is the widget kit's success mark; an answer
# with ✖ or ⚠ is not a result.
FAILED_MARKS = ("✖", "⚠")


def clicks_of(name: str) -> list[dict]:
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    return nb.get("metadata", {}).get("workbook", {}).get("clicks", [])


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
         f"--notebook-dir={served}", "--ServerApp.disable_check_xsrf=True", f"--ServerApp.base_url={BASE_PATH}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(home / "lab.log", "wb"),
    )
    base = f"http://127.0.0.1:{port}{BASE_PATH.rstrip('/')}"
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


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:30]


def shows_ui_link(name: str) -> bool:
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    return any("history.ui_link(" in "".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "code")


def open_ui_link(context, page, name: str) -> str:
    """Click the notebook's (last) Web UI link and see that workflow's page, with its events, through Jupyter's URL."""
    link = page.locator(".jp-NotebookPanel:visible a", has_text=UI_LINK_TEXT).last
    link.scroll_into_view_if_needed()
    workflow_id = link.inner_text().strip().removeprefix("Open ").removesuffix(UI_LINK_TEXT).strip()
    href = link.get_attribute("href")
    assert href.startswith(BASE_PATH + "temporal/namespaces/"), f"{name}: the UI link {href!r} is not under Jupyter's URL"
    with context.expect_page(timeout=30_000) as opened:
        link.click()
    ui = opened.value
    try:
        ui.wait_for_function(
            "([id]) => { const t = document.body.innerText;"
            " return t.includes(id) && /Workflow\\s*Execution\\s*Started/i.test(t); }", arg=[workflow_id],
            timeout=60_000)
    except Exception as err:
        SHOTS.mkdir(parents=True, exist_ok=True)
        ui.screenshot(path=str(SHOTS / f"{Path(name).stem}-ui-FAILED.png"))
        raise AssertionError(f"{name}: the Web UI page of {workflow_id} ({ui.url}) did not show it with its events: "
                             f"{ui.inner_text('body')[:500]!r}") from err
    SHOTS.mkdir(parents=True, exist_ok=True)
    ui.screenshot(path=str(SHOTS / f"{Path(name).stem}-web-ui.png"))
    ui.close()
    return workflow_id


def shut_kernels_down(page) -> None:
    """Shut every kernel down (through the lab's own URL, base path included)."""
    page.evaluate("async (base) => { for (const k of await (await fetch(base + 'api/kernels')).json()) "
                  "await fetch(base + 'api/kernels/' + k.id, {method: 'DELETE'}); }", BASE_PATH)


def saved_outputs(page, path: Path) -> list[dict]:
    """Save the notebook (File > Save) and read its outputs back from the file. JupyterLab renders an error with
    the stderr mime type, like any printed warning, so the page alone cannot tell an error from a warning."""
    before = path.stat().st_mtime_ns
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^File$")).click(timeout=10_000)
    page.click("li[data-command='docmanager:save']", timeout=10_000)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != before:
            try:
                nb = json.loads(path.read_text())
                return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
            except json.JSONDecodeError:
                pass  # still being written
        time.sleep(0.2)
    raise AssertionError(f"JupyterLab did not save {path.name} within 30 s")


def assert_no_error(page, path: Path) -> None:
    errors = [o for o in saved_outputs(page, path) if o["output_type"] == "error"]
    assert not errors, f"{path.name}: a cell shows an error: {errors[0]['ename']}: {errors[0]['evalue'][:1500]}"


# one xdist group per notebook: notebooks run in parallel, each worker with its own JupyterLab
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"browser-{n}")) for n in NOTEBOOKS])
def test_notebook_in_jupyterlab(lab, browser, name):
    base, token, home = lab
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        # a workspace of its own, so that tabs of earlier notebooks are not restored beside this one
        page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}", timeout=60_000)
        wait_idle(page, 90)
        started = time.monotonic()
        run_command(page, "runmenu:run-all")  # clean-up cells included: the learner plays after Run All
        print(f"{name}: Run All took {time.monotonic() - started:.1f} s in the browser")
        assert_no_error(page, home / "notebooks" / name)
        for click in clicks_of(name):
            label, expected = click["label"], click["expect"]
            button = page.locator(".jp-NotebookPanel:visible button.jupyter-button").filter(
                has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).last  # the newest, live copy
            try:
                button.scroll_into_view_if_needed()
            except Exception as err:  # no such button after Run All: show what the page has instead
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / f"{Path(name).stem}-FAILED.png"), full_page=True)
                outputs = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").all_inner_texts()
                raise AssertionError(f"{name}: after Run All there is no {label!r} button "
                                     f"({type(err).__name__}); the last outputs: {outputs[-3:]!r}") from None
            area = button.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]")
            # the answer a cell left there (the click's answer replaces it: the "(NN ms)" in it differs)
            before = area.evaluate("el => { const o = el.querySelectorAll('.jp-OutputArea-output');"
                                   " return o.length ? o[o.length - 1].innerText : ''; }")
            button.click()
            clicked = time.monotonic()
            try:  # found again on every poll: the page may re-render the widget while the action runs
                page.wait_for_function(
                    "([label, text, marks, before]) => {"
                    " const b = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) button.jupyter-button')]"
                    "   .filter(x => x.innerText.replace(' …', '').trim() === label).pop();"
                    " if (!b || b.disabled) return false;"
                    " const outs = b.closest('.widget-vbox').querySelectorAll('.jp-OutputArea-output');"
                    " const last = outs.length ? outs[outs.length - 1].innerText : '';"
                    " return last !== before && (last.includes(text) || marks.some(m => last.includes(m))); }",
                    arg=[label, expected, list(FAILED_MARKS), before], timeout=300_000)
                answer = area.locator(".jp-OutputArea-output").last.inner_text()
                assert expected in answer and not any(m in answer for m in FAILED_MARKS), answer
            except Exception as err:
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / f"{Path(name).stem}-FAILED.png"))
                raise AssertionError(f"{name}: after Run All, clicking {label!r} did not answer with {expected!r} "
                                     f"({type(err).__name__}: {str(err).splitlines()[0][:200]} after "
                                     f"{time.monotonic() - clicked:.0f} s); it showed: {area.inner_text()[:500]!r}") from None
            print(f"  after Run All, {label!r} answered {expected!r} in {time.monotonic() - clicked:.2f} s")
            SHOTS.mkdir(parents=True, exist_ok=True)  # what a learner sees right after the click
            page.screenshot(path=str(SHOTS / f"{Path(name).stem}-{slug(label)}.png"), full_page=False)
        assert_no_error(page, home / "notebooks" / name)
        if shows_ui_link(name):
            print(f"  its Web UI link opened {open_ui_link(context, page, name)}'s page with its events")
    finally:
        shut_kernels_down(page)  # the shared dev server stays: it ends with the lab
        context.close()


SHARED_NOTEBOOK = """\
from tutorial import history, server
from tutorial.workflows.greeting import Greet
from tutorial.workshop import unique
client = await server.connect()
handle = await client.start_workflow(Greet.run, "x", id=unique("two-notebooks-{tag}"), task_queue=unique("nobody"))
history.ui_link(handle)"""


@pytest.mark.xdist_group("browser-shared-server")
def test_two_notebooks_share_one_server_and_its_web_ui(lab, browser):
    """Two notebooks of one JupyterLab: one dev server (their status lines name the same), one Web UI list."""
    import nbformat

    base, token, home = lab
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    seen = {}
    try:
        for tag in ("a", "b"):
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SHARED_NOTEBOOK.format(tag=tag))])
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
            nbformat.write(nb, home / "notebooks" / f"shared-{tag}.ipynb")
            page.goto(f"{base}/lab/workspaces/shared-{tag}/tree/shared-{tag}.ipynb?reset&token={token}",
                      timeout=60_000)
            wait_idle(page, 90)
            run_command(page, "runmenu:run-all", timeout_s=120)
            assert_no_error(page, home / "notebooks" / f"shared-{tag}.ipynb")
            status = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output", has_text="Temporal ready").last
            address = re.search(r"JupyterLab's shared dev server \(pid \d+\) at (\S+),", status.inner_text())
            assert address, f"shared-{tag}: not on the shared server: {status.inner_text()!r}"
            link = page.locator(".jp-NotebookPanel:visible a", has_text=UI_LINK_TEXT).last
            seen[tag] = (address.group(1), link.inner_text().strip().removeprefix("Open ").removesuffix(UI_LINK_TEXT).strip())
        assert seen["a"][0] == seen["b"][0], f"two notebooks, two servers: {seen}"
        open_ui_link(context, page, "shared-b.ipynb")  # the second one's page, with its events
        ui = context.new_page()
        ui.goto(f"{base}/temporal/namespaces/default/workflows", timeout=60_000)
        ids = [seen["a"][1], seen["b"][1]]
        try:
            ui.wait_for_function("(ids) => ids.every(id => document.body.innerText.includes(id))", arg=ids,
                                 timeout=60_000)
        except Exception as err:
            SHOTS.mkdir(parents=True, exist_ok=True)
            ui.screenshot(path=str(SHOTS / "shared-server-list-FAILED.png"))
            raise AssertionError(f"the Web UI's list did not show both notebooks' workflows {ids}: "
                                 f"{ui.inner_text('body')[:800]!r}") from err
        SHOTS.mkdir(parents=True, exist_ok=True)
        ui.screenshot(path=str(SHOTS / "shared-server-list.png"))
        print(f"one server {seen['a'][0]} for both notebooks; the UI's list shows {ids}")
    finally:
        shut_kernels_down(page)
        context.close()


@pytest.mark.xdist_group("browser-shared-server")
def test_counterfactual_the_error_check_sees_a_failed_cell(lab, browser):
    """`assert_no_error` fails on a notebook whose cell raised (the page shows errors like stderr: it reads the file)."""
    import nbformat

    base, token, home = lab
    path = home / "notebooks" / "fails.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('a warning', file=__import__('sys').stderr)"),
                                         nbformat.v4.new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{base}/lab/workspaces/fails/tree/fails.ipynb?reset&token={token}", timeout=60_000)
        wait_idle(page, 90)
        run_command(page, "runmenu:run-all", timeout_s=60)
        with pytest.raises(AssertionError, match="ZeroDivisionError"):
            assert_no_error(page, path)
    finally:
        shut_kernels_down(page)
        context.close()
