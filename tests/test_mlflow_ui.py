"""End to end in a real browser: what an analyst sees in MLflow's UI after using the CLI.

An ``mlflow server`` on a free loopback port over a temporary SQLite store receives a small model
from ``recoverscore generate``, ``train`` and ``promote``, and a scoring run from ``recoverscore
score``; headless Debian Chromium, driven by Playwright, then opens each page an analyst needs,
from the links the CLI printed where it printed one: the experiments open on their runs (the
model-training view, not GenAI traces) listing the runs by name; the registered model page shows
the champion and each version's test AUC; the version page shows the AUC, the alias and a link
to the run that trained it; the training run shows its test AUC as the tracking server stores
it, its dataset and its version; the scoring run links the version it used. MLflow's first-visit
pop-ups (its assistant panel, the "new model registry UI" announcement) are dismissed the way a
returning browser has them dismissed, and each page is checked to be free of them. A screenshot
of every page lands in ``build/test-artifacts/``, passed or failed.

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
from recoverscore.registry import UI_VIEW
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
# A browser's first visit opens the UI's "MLflow Assistant" side panel, covering a quarter of every
# screenshot, and the model registry's "new Model Registry UI" announcement, covering the page.
# These are the UI's own localStorage keys for "already seen" (MLflow 3.17); every page test
# checks that neither shows, so a renamed key fails loudly instead of hiding the page.
DISMISS_FIRST_VISIT = """
window.localStorage.setItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true");
window.localStorage.setItem("mlflow.assistant.panelOpen_v1", "false");
window.localStorage.setItem("_mlflow_model_registry_promo_modal_dismissed_v1", "true");
"""
PROMO = "Flexible, governed deployments"
AS_OF = "2026-06-30"
SCORING_AS_OF = "2026-11-24"


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
    context.add_init_script(DISMISS_FIRST_VISIT)
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
    """Version 1, trained on 4,000 synthetic debts and promoted to champion, then a portfolio
    scored with it; the links the CLI printed and what the tracking server stores."""
    work = tmp_path_factory.mktemp("mlflow_ui_work")
    env = {
        **{k: v for k, v in os.environ.items() if k != "MLFLOW_LOGGING_LEVEL"},
        **QUIET_MLFLOW,
        **NEUTRAL_USER,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_REGISTRY_URI": mlflow_server,
    }
    config = _small_train_config(work / "train.yaml")
    data = work / "h.parquet"
    _run(["generate", "--rows", "4000", "--seed", "3", "--out", str(data)], work, env)
    trained = _run(
        ["train", "--data", str(data), "--config", str(config), "--out", str(work / "model")],
        work,
        env,
    )
    _run(["promote", "1"], work, env)
    portfolio = work / "portfolio.csv"
    _run(
        ["generate", "--rows", "600", "--seed", "5", "--as-of", SCORING_AS_OF, "--out",
         str(portfolio)],
        work,
        env,
    )  # fmt: skip
    scored = _run(
        ["score", "--input", str(portfolio), "--output", str(work / "scored.csv"), "--no-explain"],
        work,
        env,
    )
    for output in (trained, scored):  # MLflow's own notices stay off the terminal
        noise = r"INFO mlflow|Successfully registered|already exists|View run|View experiment"
        assert not re.search(noise, output), output

    client = mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    aliases = client.get_registered_model(MODEL).aliases
    assert aliases.get("champion") == "1", aliases
    version = client.get_model_version(MODEL, "1")
    run = client.get_run(version.run_id)
    scoring = client.search_runs(
        [client.get_experiment_by_name("recoverscore-scoring").experiment_id]
    )[0]
    return SimpleNamespace(
        url=mlflow_server,
        aliases=aliases,
        run_id=run.info.run_id,
        run_name=run.info.run_name,
        experiment_id=run.info.experiment_id,
        test_auc=run.data.metrics["test_auc"],
        version_tags=version.tags,
        version_link=_printed_link(trained, rf"{re.escape(mlflow_server)}/#/models/\S+?"),
        scoring_run_name=scoring.info.run_name,
        scoring_experiment_id=scoring.info.experiment_id,
        scoring_link=_printed_link(scored, rf"{re.escape(mlflow_server)}/#/experiments/\S+?"),
    )


def _printed_link(output: str, pattern: str) -> str:
    """The one MLflow UI link a command printed (rich may wrap it: the output is unwrapped)."""
    found = re.findall(pattern + re.escape(f"?{UI_VIEW}"), output.replace("\n", ""))
    assert len(found) == 1, output
    return found[0]


def as_the_ui_shows(value: float) -> str:
    """A metric as the run page's table prints it: JavaScript's ``String(number)``.

    That is the shortest text that reads back as the same double, which for values between 1e-4
    and 1e16 is Python's ``repr``, except that a whole number has no ``.0``.
    """
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def no_pop_ups(page: Page) -> None:
    """Nothing covers the page: no registry announcement, no dialog of any kind."""
    expect(page.get_by_text(PROMO)).to_have_count(0)
    expect(page.get_by_role("dialog")).to_have_count(0)


# --- the pages ------------------------------------------------------------------------------------


def test_training_experiment_opens_on_its_runs(page: Page, registered):
    page.goto(f"{registered.url}/#/experiments/{registered.experiment_id}?{UI_VIEW}")
    with screenshot_after(page, "mlflow_ui_experiment.png"):
        run_link = page.get_by_role("link", name=registered.run_name, exact=True)
        expect(run_link).to_be_visible(timeout=UI_TIMEOUT)
        assert registered.run_name == f"train {AS_OF} 4k rows"
        expect(page).to_have_url(re.compile(r"/runs\?"), timeout=UI_TIMEOUT)  # not GenAI traces
        expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
        expect(page.get_by_text("Training runs of the recoverscore recovery model")).to_be_visible()
        no_pop_ups(page)


def test_scoring_experiment_opens_on_its_named_runs(page: Page, registered):
    page.goto(f"{registered.url}/#/experiments/{registered.scoring_experiment_id}?{UI_VIEW}")
    with screenshot_after(page, "mlflow_ui_scoring_experiment.png"):
        assert registered.scoring_run_name == f"score {SCORING_AS_OF} portfolio.csv"
        run_link = page.get_by_role("link", name=registered.scoring_run_name, exact=True)
        expect(run_link).to_be_visible(timeout=UI_TIMEOUT)
        expect(page).to_have_url(re.compile(r"/runs\?"), timeout=UI_TIMEOUT)
        no_pop_ups(page)


def test_registered_model_page_shows_the_champion_and_its_auc(page: Page, registered):
    page.goto(f"{registered.url}/#/models")
    with screenshot_after(page, "mlflow_ui_models.png"):
        expect(page.get_by_role("link", name=MODEL, exact=True)).to_be_visible(timeout=UI_TIMEOUT)
        no_pop_ups(page)  # the registry's announcement shows on this page on a first visit
    page.goto(f"{registered.url}/#/models/{MODEL}?{UI_VIEW}")
    with screenshot_after(page, "mlflow_ui_registered_model.png"):
        expect(page.get_by_role("heading", name=MODEL, exact=True)).to_be_visible(
            timeout=UI_TIMEOUT
        )
        expect(page.get_by_text("Recovery likelihood of unpaid debts")).to_be_visible()
        # the row whose version link reads "Version 1" (its text runs into the date after it)
        version_row = page.get_by_role("row").filter(
            has=page.get_by_role("link", name="Version 1", exact=True)
        )
        expect(version_row).to_have_count(1, timeout=UI_TIMEOUT)
        expect(version_row.get_by_text(re.compile(r"\bchampion\b"))).to_be_visible()
        for alias in registered.aliases:  # every alias on version 1 (the only version)
            expect(version_row).to_contain_text(alias)
        auc = registered.version_tags["test_auc"]
        assert auc == f"{registered.test_auc:.4f}"
        expect(version_row).to_contain_text(f"test_auc: {auc}")  # versions compare by it
        expect(version_row).to_contain_text("auc_vs_scorecard")
        no_pop_ups(page)


def test_version_page_shows_the_auc_the_alias_and_links_the_run(page: Page, registered):
    assert registered.version_link == f"{registered.url}/#/models/{MODEL}/versions/1?{UI_VIEW}"
    page.goto(registered.version_link)  # the link `recoverscore train` printed
    with screenshot_after(page, "mlflow_ui_model_version.png"):
        expect(page.get_by_role("heading", name="Version 1", exact=True)).to_be_visible(
            timeout=UI_TIMEOUT
        )
        auc = registered.version_tags["test_auc"]
        expect(page.get_by_text(f"Test AUC {auc}, ")).to_be_visible()
        tag_row = page.get_by_role("row").filter(has=page.get_by_text("test_auc", exact=True))
        expect(tag_row).to_contain_text(auc)
        expect(page.get_by_text(re.compile(r"\bchampion\b"))).to_be_visible()
        run_link = page.get_by_role("link", name=registered.run_name, exact=True)
        run_page = f"#/experiments/{registered.experiment_id}/runs/{registered.run_id}"
        expect(run_link).to_have_attribute("href", run_page)
        no_pop_ups(page)
    run_link.click()
    expect(page).to_have_url(f"{registered.url}/{run_page}", timeout=UI_TIMEOUT)
    expect(page.get_by_role("heading", name=registered.run_name, exact=True)).to_be_visible(
        timeout=UI_TIMEOUT
    )


def test_training_run_page_shows_the_auc_the_dataset_and_its_version(page: Page, registered):
    page.goto(
        f"{registered.url}/#/experiments/{registered.experiment_id}/runs/{registered.run_id}"
        f"?{UI_VIEW}"
    )
    with screenshot_after(page, "mlflow_ui_run.png"):
        expect(page.get_by_role("heading", name=registered.run_name, exact=True)).to_be_visible(
            timeout=UI_TIMEOUT
        )
        version = page.get_by_role("link", name=f"{MODEL} version 1", exact=True)
        expect(version).to_have_attribute("href", f"#/models/{MODEL}/versions/1?{UI_VIEW}")
        expect(page.get_by_text("h.parquet", exact=False).first).to_be_visible()  # its dataset
        auc_row = page.get_by_role("row").filter(
            has=page.get_by_role("cell", name="test_auc", exact=True)
        )
        expect(auc_row).to_have_count(1, timeout=UI_TIMEOUT)
        shown = as_the_ui_shows(registered.test_auc)
        auc_cell = auc_row.get_by_role("cell", name=shown, exact=True)
        expect(auc_cell).to_be_visible(timeout=UI_TIMEOUT)
        no_pop_ups(page)
        auc_cell.scroll_into_view_if_needed()  # the screenshot shows the AUC


def test_scoring_run_links_the_version_it_used(page: Page, registered):
    page.goto(registered.scoring_link)  # the link `recoverscore score` printed
    with screenshot_after(page, "mlflow_ui_scoring_run.png"):
        expect(
            page.get_by_role("heading", name=registered.scoring_run_name, exact=True)
        ).to_be_visible(timeout=UI_TIMEOUT)
        version = page.get_by_role("link", name=f"{MODEL} version 1", exact=True)
        expect(version).to_have_attribute("href", f"#/models/{MODEL}/versions/1?{UI_VIEW}")
        expect(page.get_by_text("Drift from training:")).to_be_visible()
        psi_row = page.get_by_role("row").filter(
            has=page.get_by_role("cell", name="psi_max", exact=True)
        )
        expect(psi_row).to_have_count(1, timeout=UI_TIMEOUT)
        no_pop_ups(page)
    with page.context.expect_page() as opened:  # MLflow opens description links in a new tab
        version.click()
    expect(opened.value.get_by_role("heading", name="Version 1", exact=True)).to_be_visible(
        timeout=UI_TIMEOUT
    )
