"""End to end in a real browser: a model trained and promoted with the CLI, as MLflow's UI shows it.

An ``mlflow server`` on a free loopback port over a temporary SQLite store receives a small model
from ``recoverscore generate``, ``train`` and ``promote``; headless Debian Chromium, driven by
Playwright, then checks that the registered model page shows the model and its ``champion``
alias, that the version page links to the run that trained it, and that the run page shows the
run's test AUC as the tracking server stores it. Screenshots land in ``build/test-artifacts/``.

The browser is the Debian package (Playwright's own download needs the internet): without
``/usr/bin/chromium`` or the ``playwright`` package the tests skip locally and fail on CI
(``CI=true``), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
import yaml

from recoverscore.config import default_config_path
from tests.conftest import ROOT, free_port

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
except ImportError as error:  # checked by the browser fixture: skip locally, fail on CI
    PLAYWRIGHT_MISSING: ImportError | None = error
else:
    PLAYWRIGHT_MISSING = None

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "build" / "test-artifacts"
BIN = Path(sys.executable).parent  # the virtualenv's console scripts: mlflow, recoverscore
MODEL = "recoverscore"
SERVER_START_TIMEOUT = 120.0  # seconds; generous, the CI machine may be busy
COMMAND_TIMEOUT = 600.0  # seconds for one CLI command
UI_TIMEOUT = 60_000  # milliseconds for the UI to render what an assertion waits for
# No telemetry (there is no internet), no background job runner (three extra processes of
# 20 threads that this test never uses).
QUIET_MLFLOW = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# MLflow records the login name as the run's "Created by": keep the developer's out of the
# screenshots.
NEUTRAL_USER = {"LOGNAME": "recoverscore-test", "USER": "recoverscore-test"}
# The UI opens its "MLflow Assistant" side panel on a browser's first visit, covering a quarter
# of every screenshot. These are the UI's own localStorage keys (MLflow 3.17); if they change,
# the panel shows again and nothing else is affected.
CLOSE_ASSISTANT = """
window.localStorage.setItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true");
window.localStorage.setItem("mlflow.assistant.panelOpen_v1", "false");
"""


# --- the browser ----------------------------------------------------------------------------------


def _browser_missing() -> str | None:
    if PLAYWRIGHT_MISSING is not None:
        return f"the playwright package cannot be imported ({PLAYWRIGHT_MISSING})"
    if not CHROMIUM.is_file():
        return (
            f"{CHROMIUM} does not exist: install it with "
            "`apt-get install -y --no-install-recommends chromium fonts-noto-cjk`"
        )
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; requested before the server so a skip costs nothing."""
    missing = _browser_missing()
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {missing}; .ci/run installs the browser", pytrace=False)
        pytest.skip(missing)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context per test: no state carried from one page check to the next."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(CLOSE_ASSISTANT)
    context.set_default_timeout(UI_TIMEOUT)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextlib.contextmanager
def screenshot_after(page: Page, name: str) -> Iterator[None]:
    """Save ``build/test-artifacts/<name>`` when the block ends, passed or failed."""
    try:
        yield
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PlaywrightError):  # a dead page must not hide the real failure
            page.screenshot(path=str(ARTIFACTS / name), full_page=True)


# --- the tracking server --------------------------------------------------------------------------


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _stop(server: subprocess.Popen) -> None:
    """End the server's process group (mlflow starts uvicorn as a child), by its id."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        try:
            server.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _sqlite_server(root: Path, port: int) -> list[str]:
    """``mlflow server`` over a SQLite store in ``root``, one worker, on a loopback ``port``."""
    return [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def _start_server(
    root: Path,
    log: Path,
    command: Callable[[Path, int], list[str]] = _sqlite_server,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """``command(root, port)`` on a free loopback port, once ``/health`` answers.

    Polls until the deadline; the wait between polls is ``Popen.wait``, so a server that dies
    (say, the port was taken in between) is noticed at once and started again on another port.
    """
    for _attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            server = subprocess.Popen(
                command(root, port),
                cwd=root,
                env={**os.environ, **QUIET_MLFLOW, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if _healthy(url):
                    return server, url
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(timeout=0.5)
                if server.poll() is not None:
                    break  # died: try another port
            else:
                pytest.fail(
                    f"no answer from {url}/health in {SERVER_START_TIMEOUT:.0f} s:\n{_tail(log)}",
                    pytrace=False,
                )
        except BaseException:
            _stop(server)
            raise
        _stop(server)
    pytest.fail(f"mlflow server did not start (log {log}):\n{_tail(log)}", pytrace=False)


@pytest.fixture(scope="module")
def mlflow_server(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a fresh tracking server; always terminated afterwards."""
    root = tmp_path_factory.mktemp("mlflow_server")
    server, url = _start_server(root, root / "server.log")
    try:
        yield url
    finally:
        _stop(server)


# --- a model trained, registered and promoted with the CLI ----------------------------------------


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(BIN / "recoverscore"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"recoverscore {' '.join(args)} failed:\n{output}"
    return output


def _small_train_config(path: Path) -> Path:
    """configs/train.yaml with one LightGBM thread and few rounds: seconds, not minutes."""
    config = yaml.safe_load(default_config_path("train.yaml").read_text(encoding="utf-8"))
    config["model"]["num_threads"] = 1  # 2 threads spin-wait on a busy 2-core machine
    config["model"]["lightgbm"].update(max_rounds=200, early_stopping_rounds=20)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def registered(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Version 1 of the model, trained on 4,000 synthetic debts and promoted to champion."""
    work = tmp_path_factory.mktemp("mlflow_ui_work")
    env = {
        **os.environ,
        **QUIET_MLFLOW,
        **NEUTRAL_USER,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_REGISTRY_URI": mlflow_server,
    }
    config = _small_train_config(work / "train.yaml")
    data = work / "h.parquet"
    _run(["generate", "--rows", "4000", "--seed", "3", "--out", str(data)], work, env)
    _run(
        ["train", "--data", str(data), "--config", str(config), "--out", str(work / "model")],
        work,
        env,
    )
    _run(["promote", "1"], work, env)

    client = mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    aliases = client.get_registered_model(MODEL).aliases
    assert aliases.get("champion") == "1", aliases
    run = client.get_run(client.get_model_version(MODEL, "1").run_id)
    return SimpleNamespace(
        url=mlflow_server,
        aliases=aliases,
        run_id=run.info.run_id,
        run_name=run.info.run_name,
        experiment_id=run.info.experiment_id,
        test_auc=run.data.metrics["test_auc"],
    )


def as_the_ui_shows(value: float) -> str:
    """A metric as the run page's table prints it: JavaScript's ``String(number)``.

    That is the shortest text that reads back as the same double, which for values between 1e-4
    and 1e16 is Python's ``repr``, except that a whole number has no ``.0``.
    """
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --- the pages ------------------------------------------------------------------------------------


def test_registered_model_page_shows_the_champion(page: Page, registered):
    page.goto(f"{registered.url}/#/models/{MODEL}")
    with screenshot_after(page, "mlflow_ui_registered_model.png"):
        expect(page.get_by_role("heading", name=MODEL, exact=True)).to_be_visible(
            timeout=UI_TIMEOUT
        )
        # the row whose version link reads "Version 1" (its text runs into the date after it)
        version_row = page.get_by_role("row").filter(
            has=page.get_by_role("link", name="Version 1", exact=True)
        )
        expect(version_row).to_have_count(1, timeout=UI_TIMEOUT)
        expect(version_row.get_by_text(re.compile(r"\bchampion\b"))).to_be_visible(
            timeout=UI_TIMEOUT
        )
        for alias in registered.aliases:  # every alias on version 1 (the only version)
            expect(version_row).to_contain_text(alias, timeout=UI_TIMEOUT)


def test_version_page_shows_the_alias_and_links_the_run(page: Page, registered):
    page.goto(f"{registered.url}/#/models/{MODEL}/versions/1")
    with screenshot_after(page, "mlflow_ui_model_version.png"):
        expect(page.get_by_role("heading", name="Version 1", exact=True)).to_be_visible(
            timeout=UI_TIMEOUT
        )
        expect(page.get_by_text(re.compile(r"\bchampion\b"))).to_be_visible(timeout=UI_TIMEOUT)
        run_link = page.get_by_role("link", name=registered.run_name, exact=True)
        run_page = f"#/experiments/{registered.experiment_id}/runs/{registered.run_id}"
        expect(run_link).to_have_attribute("href", run_page, timeout=UI_TIMEOUT)
    run_link.click()
    expect(page).to_have_url(f"{registered.url}/{run_page}", timeout=UI_TIMEOUT)
    expect(page.get_by_role("heading", name=registered.run_name, exact=True)).to_be_visible(
        timeout=UI_TIMEOUT
    )


def test_run_page_shows_the_test_auc(page: Page, registered):
    page.goto(f"{registered.url}/#/experiments/{registered.experiment_id}/runs/{registered.run_id}")
    with screenshot_after(page, "mlflow_ui_run.png"):
        expect(page.get_by_role("heading", name=registered.run_name, exact=True)).to_be_visible(
            timeout=UI_TIMEOUT
        )
        auc_row = page.get_by_role("row").filter(
            has=page.get_by_role("cell", name="test_auc", exact=True)
        )
        expect(auc_row).to_have_count(1, timeout=UI_TIMEOUT)
        shown = as_the_ui_shows(registered.test_auc)
        auc_cell = auc_row.get_by_role("cell", name=shown, exact=True)
        expect(auc_cell).to_be_visible(timeout=UI_TIMEOUT)
        auc_cell.scroll_into_view_if_needed()  # the screenshot shows the AUC
