"""The README's bring-your-own-data walk-through, executed step by step as a user would.

The README's section "Your own data" holds fenced blocks marked ``<!-- walkthrough -->`` (shell
commands and Python) and ``<!-- walkthrough: NAME -->`` (a file to write). This test runs them in
order in a fresh folder holding the example files of ``data/examples/``, with ``recoverscore`` and
``mlflow`` from this environment and a throwaway MLflow store, and checks what each step leaves.

Run as a script to regenerate the example files: ``.venv/bin/python tests/test_walkthrough.py``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = ROOT / "data" / "examples"
BIN = Path(sys.executable).parent
TIERS = ("soft_reminder", "mediation", "payment_order", "litigation")
_BLOCK = re.compile(
    r"<!-- walkthrough(?:: (?P<file>[\w.]+))? -->\n```(?P<lang>\w+)\n(?P<body>.*?)```", re.S
)


def example_cases(rows: int, seed: int, labelled: bool = True) -> pd.DataFrame:
    """A collector's own case file: its own id, columns and action names for the tiers it gave.

    Nothing like the synthetic world: no dates (age is a number of days), no contract columns
    besides the amount, a product instead of a debtor type, a bureau score and call outcomes.
    """
    rng = np.random.default_rng(seed)
    days = rng.integers(3, 900, rows)
    frame = pd.DataFrame(
        {
            "case_no": [f"K-{seed:02d}{i:05d}" for i in range(rows)],
            "principal": np.round(rng.lognormal(9.4, 0.9, rows), 2),
            "days_overdue": days,
            "product": rng.choice(["card", "cash_loan", "auto_loan", "merchant"], rows),
            "bureau_score": np.clip(np.round(rng.normal(610, 80, rows)), 350, 850),
            "calls_answered": rng.binomial(5, 0.45, rows),
        }
    )
    if not labelled:
        return frame
    staircase = np.select([days <= 30, days <= 90, days <= 180], TIERS[:3], TIERS[3])
    explore = rng.random(rows) < 0.25
    action = np.where(explore, rng.choice(TIERS, rows), staircase)
    base = (
        -1.0
        + 0.006 * (frame["bureau_score"] - 600)
        + 0.35 * frame["calls_answered"]
        - 0.9 * np.log1p(days / 60)
    )
    lift = {
        "soft_reminder": 0.9 - 0.004 * days,
        "mediation": 0.4 + 0.15 * frame["calls_answered"] - 0.001 * days,
        "payment_order": 0.2 + 0.4 * (frame["product"] == "auto_loan"),
        "litigation": -0.3 + 0.5 * (frame["principal"] > 20_000),
    }
    logit = base + np.select([action == t for t in TIERS], [lift[t] for t in TIERS])
    frame["action"] = action
    frame["paid"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def write_examples() -> None:
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    example_cases(1_500, seed=1).to_csv(EXAMPLES / "cases.csv", index=False)
    example_cases(300, seed=2, labelled=False).to_csv(EXAMPLES / "new_cases.csv", index=False)


def test_committed_examples_are_reproducible():
    for name, frame in (
        ("cases.csv", example_cases(1_500, seed=1)),
        ("new_cases.csv", example_cases(300, seed=2, labelled=False)),
    ):
        committed = pd.read_csv(EXAMPLES / name)
        pd.testing.assert_frame_equal(committed, frame, check_dtype=False)


def _blocks() -> list[tuple[str | None, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    return [(m["file"], m["lang"], m["body"]) for m in _BLOCK.finditer(section)]


def _run(command: str, folder: Path, env: dict) -> subprocess.CompletedProcess:
    words = shlex.split(command)
    words[0] = str(BIN / words[0])  # recoverscore and mlflow from this environment
    return subprocess.run(words, cwd=folder, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_written(tmp_path):
    blocks = _blocks()
    assert [lang for _, lang, _ in blocks] == ["yaml", "bash", "python", "python"], blocks
    for name in ("cases.csv", "new_cases.csv"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    outputs: list[str] = []
    namespace: dict = {}
    cwd = Path.cwd()
    for file, language, body in blocks:
        if file is not None:
            (tmp_path / file).write_text(body, encoding="utf-8")
        elif language in ("bash", "sh"):
            for line in body.strip().splitlines():
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                result = _run(line, tmp_path, env)
                assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
                outputs.append(result.stdout)
        else:
            os.chdir(tmp_path)
            try:
                with pytest.MonkeyPatch.context() as mp:
                    mp.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
                    mp.setenv("MLFLOW_REGISTRY_URI", env["MLFLOW_TRACKING_URI"])
                    # an earlier test in this process may have pointed MLflow's globals elsewhere
                    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
                    mlflow.set_registry_uri(env["MLFLOW_TRACKING_URI"])
                    exec(compile(body, "README walk-through", "exec"), namespace)
            finally:
                mlflow.set_tracking_uri(None)
                mlflow.set_registry_uri(None)
                os.chdir(cwd)
    everything = "\n".join(outputs)
    # training: the small file took the k-fold path and said how each candidate did out of fold
    assert "cross-validation, same folds" in everything and "scorecard" in everything
    # the model's own contract: its own id, its own columns, no debtor_id
    assert "| `case_no` | str | yes |" in everything and "debtor_id" not in everything
    assert "| `bureau_score` | float | no |" in everything
    scored = pd.read_csv(tmp_path / "scored.csv")
    new = pd.read_csv(tmp_path / "new_cases.csv")
    assert scored["case_no"].tolist() == new["case_no"].tolist()
    assert scored["recommended_tier"].isin(TIERS).all()
    assert scored["top_reasons"].notna().all()
    assert scored["why"].str.contains("not checked, no data").all()
    # Python and the served model answer like the batch job
    in_python = namespace["scored"]
    served = namespace["served"]
    for frame in (in_python, served):
        assert frame["case_no"].tolist() == scored["case_no"].tolist()
        assert frame["recommended_tier"].tolist() == scored["recommended_tier"].tolist()
        np.testing.assert_allclose(frame["p_mediation"], scored["p_mediation"], rtol=1e-9)


if __name__ == "__main__":
    write_examples()
