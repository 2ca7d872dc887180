"""The ``recoverscore`` command line: the terminal edge of the library.

Exit codes: 0 success (for ``score``: every row scored); 1 some rows failed validation (for
``score``: they are in the rejects file, the others were scored); 2 a usage, input file, model or
configuration error, printed as one line; 3 an internal error (a bug): one line naming a log file
that holds the traceback (messages withheld), which ``--debug`` prints on screen instead.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click
import pandas as pd
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from typer.core import TyperGroup

from recoverscore import __version__
from recoverscore.data import parsing, schemas, validation
from recoverscore.data.checking import check_file
from recoverscore.data.reader import Source
from recoverscore.data.synthetic import generate, load_synthetic_config
from recoverscore.data.tables import (
    check_paths,
    csv_safe,
    locked,
    read_table,
    table_format,
    write_chunks,
    write_json,
)
from recoverscore.errors import RecoverscoreError, internal_report

EXIT_INVALID = 1
EXIT_ERROR = 2
EXIT_INTERNAL = 3

# Logs and pipes get a fixed width wide enough for the summary tables; terminals use their own.
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


def _crash_log(error: BaseException, command: str | None) -> Path:
    """Write an unexpected error's report to a new private file in the temporary folder."""
    handle, name = tempfile.mkstemp(prefix="recoverscore-error-", suffix=".log")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = f"recoverscore {__version__} {command or ''}: internal error at {stamp}\n\n"
    with os.fdopen(handle, "w", encoding="utf-8") as log:
        log.write(header + internal_report(error))
    return Path(name)


# Usage errors and deliberate exits end the way click ends them (usage text, exit 2). Typer from
# 0.23 on vendors its own click, whose exceptions derive from ``typer.TyperException``, not click's.
_COMMAND_LINE_EXITS = (
    click.ClickException,
    click.exceptions.Exit,
    click.Abort,
    typer.Exit,
    typer.Abort,
    getattr(typer, "TyperException", click.ClickException),
)


class _Guarded(TyperGroup):
    """Every command's failures end one way: a user error is one line and exit 2; anything
    unexpected is exit 3 with one line naming its log file (the traceback only with --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except _COMMAND_LINE_EXITS:
            raise
        except RecoverscoreError as error:
            _fail(str(error))
        except Exception as error:
            if isinstance(error, BrokenPipeError) or getattr(error, "errno", None) == errno.EPIPE:
                raise  # output piped into a closed reader (`| head`): not a bug
            command = ctx.invoked_subcommand
            if ctx.params.get("debug"):
                traceback.print_exception(error, file=sys.stderr)
            else:
                try:
                    where = f"please report it with {_crash_log(error, command)}"
                except OSError:  # no writable temporary folder: the traceback is one rerun away
                    where = "no log could be written; rerun with --debug to see it"
                err.print(
                    f"[bold red]error:[/] internal error ({type(error).__name__}) in "
                    f"{command}: {where}",
                    highlight=False,
                    soft_wrap=True,
                )
            raise typer.Exit(EXIT_INTERNAL) from None


app = typer.Typer(
    cls=_Guarded,
    help="Recovery likelihood and collection-strategy scoring for debt portfolios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_mlflow_level = logging.WARNING  # MLflow's own INFO messages only with --verbose


def _versions() -> str:
    found = []
    for name in ("recoverscore", "mlflow", "lightgbm", "pandas"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (not installed)")
    python = ".".join(map(str, sys.version_info[:3]))
    return f"{found[0]} ({', '.join(found[1:])}, Python {python})"


def _show_version(value: bool) -> None:
    if value:
        out.print(_versions(), highlight=False)
        raise typer.Exit()


alias_app = typer.Typer(help="Registry aliases.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the versions of recoverscore and its main libraries, and exit.",
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also show MLflow's own messages (database set-up, ...)."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="On an internal error, print the traceback instead of a log path."
    ),
) -> None:
    """Recovery likelihood and collection-strategy scoring for debt portfolios."""
    global _mlflow_level
    _mlflow_level = logging.INFO if verbose else logging.WARNING


def _new_pass(progress: Progress, text: str, total: int | None = None, **fields: str) -> TaskID:
    """Show one task afresh for the next pass of a command (rich keeps a task's total once
    set, so a pass of unknown length needs a new task)."""
    for task in progress.tasks:
        progress.remove_task(task.id)
    return progress.add_task(text, total=total, **fields)


def _registry():
    """The MLflow edge, imported when needed, with MLflow's logger at the level ``--verbose``
    chose (set after the import: importing MLflow sets its logger up afresh)."""
    from recoverscore import registry

    logging.getLogger("mlflow").setLevel(_mlflow_level)
    return registry


class SchemaChoice(StrEnum):
    auto = "auto"
    portfolio = "portfolio"
    history = "history"
    synthetic = "synthetic"
    outcomes = "outcomes"


class PolicyChoice(StrEnum):
    safe = "safe"
    value = "value"
    matrix = "matrix"
    baseline = "baseline"


class EngineChoice(StrEnum):
    local = "local"
    dask = "dask"


class LanguageChoice(StrEnum):
    en = "en"
    zh = "zh"


SCHEMAS = {
    SchemaChoice.portfolio: schemas.Portfolio,
    SchemaChoice.history: schemas.History,
    SchemaChoice.synthetic: schemas.SyntheticHistory,
    SchemaChoice.outcomes: schemas.Outcomes,
}
DOCUMENTED = {**{c.value: m for c, m in SCHEMAS.items()}, "scored": schemas.Scored}


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_ERROR)


def _date(value: str | None, option: str) -> pd.Timestamp | None:
    """A date option: ``YYYY-MM-DD`` only (``11/12/2026`` is November to some, December to
    others)."""
    return None if value is None else parsing.iso_date(value, option)


def _detect(columns) -> SchemaChoice:
    """The richest schema whose distinguishing columns the file has."""
    if "outcome_date" in columns:
        return SchemaChoice.outcomes
    if schemas.true_probability_column(schemas.TIERS[0]) in columns:
        return SchemaChoice.synthetic
    if "given_tier" in columns:
        return SchemaChoice.history
    return SchemaChoice.portfolio


@app.command("generate")
def generate_command(
    out_path: Path = typer.Option(..., "--out", help="Output file: .parquet or .csv."),
    rows: int = typer.Option(5000, "--rows", min=1, help="Number of debts."),
    seed: int = typer.Option(0, "--seed", help="Random seed: fixes the data."),
    as_of: str = typer.Option("2026-06-30", "--as-of", help="Decision date, YYYY-MM-DD."),
    config: Path | None = typer.Option(None, "--config", help="World config YAML."),
    id_prefix: str = typer.Option(
        "D", "--id-prefix", help="Ids are this and a row number (another month: another prefix)."
    ),
) -> None:
    """Generate a synthetic labelled portfolio with the true recovery probability per tier."""
    try:
        table_format(out_path)
        world = load_synthetic_config(config)
        chunks = generate(rows, seed, _date(as_of, "--as-of"), world, id_prefix=id_prefix)
        with Progress(
            TextColumn("generating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=rows < 2 * world.rows_per_chunk,
            transient=True,
        ) as progress:
            task = progress.add_task("rows", total=rows)
            write_chunks(chunks, out_path, on_chunk=lambda n: progress.advance(task, n))
    except RecoverscoreError as error:
        _fail(str(error))
    out.print(f"wrote {rows:,} debts to {out_path}", highlight=False, soft_wrap=True)


_SHOWN_VALUE = 60  # characters of a failing value printed (the failures file has it all)


def _failure_table(failures: pd.DataFrame, limit: int) -> Table:
    table = Table("row", "column", "check", "value", title="validation failures")
    for row in failures.head(limit).itertuples(index=False):
        shown_row = "(file)" if pd.isna(row.row) else str(int(row.row))
        value = str(row.value)
        if len(value) > _SHOWN_VALUE:
            value = value[: _SHOWN_VALUE - 1] + "…"
        table.add_row(shown_row, str(row.column), str(row.check), value)
    return table


@app.command("validate")
def validate_command(
    path: Path = typer.Argument(..., help="CSV or Parquet file, or a folder of Parquet files."),
    schema: SchemaChoice = typer.Option(
        SchemaChoice.auto, "--schema", help="Contract to check; auto picks by the columns."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Snapshot date for files without an as_of column (default today)."
    ),
    max_rows: int = typer.Option(30, "--max-rows", min=1, help="Failures to print."),
    failures_out: Path | None = typer.Option(
        None,
        "--failures-out",
        help="Write the full failure table here (.csv or .parquet; no rows when valid).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Check against this model's own input contract (a package folder, champion, ...).",
    ),
) -> None:
    """Check a file against the portfolio, history, synthetic-history or outcomes contract, or
    a model's.

    The file is read and checked as ``score`` reads and checks it (the same reader, batches and
    id rule), so the two agree on every row.
    """
    try:
        snapshot = _date(as_of, "--as-of") or pd.Timestamp.today().normalize()
        inputs = {"input": path}
        if model is not None and Path(model).is_dir():
            inputs["model package"] = Path(model)
        if failures_out is not None:
            table_format(failures_out)
            check_paths(inputs, {"failures file": failures_out})
        source = Source(path)
        if model is not None:
            contract, label = _model_contract(model), f"model {model}'s input"
            source.require(contract.required)
            report = check_file(
                source,
                lambda frame, rows: contract.validate(frame, as_of=snapshot, rows=rows),
                contract.id_column,
            )
        else:
            choice = _detect(source.columns) if schema is SchemaChoice.auto else schema
            label = f"the {choice.value}"
            model_schema = SCHEMAS[choice]
            source.require(schemas.required_columns(model_schema))
            report = check_file(
                source,
                lambda frame, rows: validation.validate(
                    frame, model_schema, as_of=snapshot, rows=rows
                ),
                "debtor_id",
            )
        if failures_out is not None:  # even when empty: never leave an older run's table
            with locked([failures_out]):
                write_chunks(csv_safe([report.failures], failures_out), failures_out)
    except RecoverscoreError as error:
        _fail(str(error))
    if report.is_valid:
        out.print(
            f"{path}: {report.n_rows:,} rows valid against {label} schema",
            highlight=False,
            soft_wrap=True,
        )
        return
    out.print(_failure_table(report.failures, max_rows))
    by_check = report.failures.groupby(["column", "check"]).size().sort_values(ascending=False)
    counts = Table("column", "check", "failures", title="failures by check")
    for (column, check), count in by_check.items():
        counts.add_row(str(column), str(check), f"{count:,}")
    out.print(counts)
    out.print(
        f"{path}: {len(report.rejected_rows):,} of {report.n_rows:,} rows fail {label} "
        f"schema ({len(report.failures):,} failures)",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_INVALID)


def _cell(value: float, count: bool) -> str:
    """Counts in full; rates with three decimals; money in thousands or millions."""
    size = abs(value)
    if count:
        return f"{int(value):,}"
    if size >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if size >= 1e4:
        return f"{value / 1e3:,.1f}k"
    return f"{value:,.0f}" if size >= 10 else f"{value:.3f}"


def _frame_table(frame: pd.DataFrame, title: str, index_name: str) -> Table:
    table = Table(index_name, *(c.removesuffix("_cny") for c in frame.columns), title=title)
    counts = [c == "debts" for c in frame.columns]
    for label, row in frame.iterrows():
        table.add_row(str(label), *(_cell(v, c) for v, c in zip(row, counts, strict=True)))
    return table


@app.command("describe")
def describe_command(
    path: Path = typer.Argument(..., help="A labelled history file (e.g. from generate)."),
) -> None:
    """Recovery by tier and aging bucket, and the Bayes limit when the truth is present."""
    try:
        frame = read_table(path)
        choice = _detect(frame.columns)
        if choice in (SchemaChoice.portfolio, SchemaChoice.outcomes):
            raise RecoverscoreError(f"{path} has no given_tier column: not a labelled history")
        report = validation.validate(frame, SCHEMAS[choice])
        if not report.is_valid:
            raise RecoverscoreError(
                f"{path} fails the {choice.value} schema: run `recoverscore validate {path}`"
            )
    except RecoverscoreError as error:
        _fail(str(error))
    from recoverscore.modelling.evaluate import history_summary  # loads LightGBM and matplotlib

    summary = history_summary(report.valid)
    out.print(_frame_table(summary["by_tier"], "recovery by given tier", "tier"))
    out.print(_frame_table(summary["by_bucket"], "recovery by aging bucket", "bucket"))
    out.print(_frame_table(summary["tier_mix_by_bucket"], "legacy tier mix by bucket", "bucket"))
    line = f"{summary['rows']:,} debts, recovery rate {summary['recovery_rate']:.3f}"
    if "bayes_limit_auc" in summary:
        out.print(_frame_table(summary["true_p_by_bucket"], "mean true P by bucket", "bucket"))
        line += f", Bayes-limit AUC {summary['bayes_limit_auc']:.4f}"
    out.print(line, highlight=False, soft_wrap=True)


def _model_contract(model: str):
    """The input contract of a model package (a folder, or a registered version or alias)."""
    return _registry().load_package(model).package.contract


@app.command("schema")
def schema_command(
    name: str = typer.Argument("portfolio", help=f"Which contract: {', '.join(DOCUMENTED)}."),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Print this model's own input contract instead (a package folder, champion, "
        "challenger, a version).",
    ),
) -> None:
    """Print a file contract as a Markdown table: columns, types, allowed values, rules."""
    if model is not None:
        try:
            print(_model_contract(model).reference())
        except RecoverscoreError as error:
            _fail(str(error))
        return
    if name not in DOCUMENTED:
        _fail(f"unknown schema {name!r}: choose one of {', '.join(DOCUMENTED)}")
    print(schemas.schema_reference(DOCUMENTED[name]))


def _metrics_table(metrics: dict[str, float]) -> Table:
    """Model beside the scorecard and, where known, the Bayes limit."""
    table = Table("metric", "model", "scorecard", "Bayes limit", title="test-set quality")
    for name in ("auc", "pr_auc", "ks", "brier", "ece"):
        limit = (
            f"{metrics['bayes_limit_auc']:.4f}"
            if name == "auc" and "bayes_limit_auc" in metrics
            else ""
        )
        table.add_row(
            name, f"{metrics[f'test_{name}']:.4f}", f"{metrics[f'scorecard_{name}']:.4f}", limit
        )
    return table


_SHORT_HEADERS = {
    "net_per_1000_cny": "net per 1000",
    "vs_oracle": "vs oracle",
    "vs_staircase": "vs staircase",
    "share_soft_reminder": "soft",
    "share_mediation": "mediation",
    "share_payment_order": "pay. order",
    "share_litigation": "litigation",
}


def _money(value: float) -> str:
    return _cell(value, False)


def _off_policy_table(evaluation, reward: str = "net_recovery") -> Table:
    """Per policy: each estimator's value with its interval, or why there is none."""
    from recoverscore.strategy.offpolicy import ESTIMATOR_NAMES

    frame = evaluation.table[evaluation.table["reward"] == reward]
    net = reward == "net_recovery"
    unit = "net recovery per 1,000 debtors, CNY" if net else "recovery rate"
    truth = "truth" in frame.columns
    table = Table(
        "policy", "estimator", "estimate", "95% interval", "effective sample",
        *(["true value"] if truth else []),
        title=f"off-policy estimates on {evaluation.rows:,} logged debts ({unit})",
    )  # fmt: skip
    show = _money if net else (lambda v: f"{v:.1%}")
    for row in frame.itertuples(index=False):
        if row.estimator == "logged":
            estimate, interval = show(row.estimate), f"{show(row.ci_low)} to {show(row.ci_high)}"
        elif not row.reliable:
            estimate, interval = "not shown", row.reason
        else:
            estimate, interval = show(row.estimate), f"{show(row.ci_low)} to {show(row.ci_high)}"
        ess = "" if row.estimator in ("logged", "dm") else f"{row.ess:,.0f}"
        extra = [show(row.truth)] if truth else []
        table.add_row(row.policy, ESTIMATOR_NAMES[row.estimator], estimate, interval, ess, *extra)
    return table


def _cv_table(table: pd.DataFrame) -> Table:
    out = Table(
        "candidate", "out-of-fold AUC", "mean fold AUC", "sd", title="cross-validation, same folds"
    )
    for name, row in table.iterrows():
        out.add_row(
            str(name), f"{row['oof_auc']:.4f}", f"{row['auc_mean']:.4f}", f"{row['auc_sd']:.4f}"
        )
    return out


@app.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", help="Labelled history: CSV, Parquet or folder."),
    config: Path | None = typer.Option(
        None, "--config", help="Training YAML (configs/train.yaml)."
    ),
    out_dir: Path = typer.Option(Path("build/model"), "--out", help="Model package folder."),
    cv: int | None = typer.Option(
        None,
        "--cv",
        min=2,
        max=20,
        help="Also report K-fold out-of-fold AUC of the model and the scorecard.",
    ),
    register: bool = typer.Option(
        True, "--register/--no-register", help="Log the run and register the model in MLflow."
    ),
) -> None:
    """Train the recovery model, evaluate it, save the package and register it in MLflow."""
    from recoverscore import training
    from recoverscore.modelling.model import load_train_config

    registry = _registry()
    try:
        cfg = load_train_config(config)
        if register:
            registry.connect()
        history = read_table(data)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rounds]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:

            def stage(text: str) -> None:
                _new_pass(progress, text, rounds="")

            def rounds(done: int, most: int) -> None:
                shown = f"boosting round {done:,} of at most {most:,}"
                task = progress.tasks[0]
                if task.total != most:  # a new boosting run (cross-validation, then the fit)
                    _new_pass(progress, task.description, most, rounds=shown)
                progress.update(progress.tasks[0].id, completed=done, rounds=shown)

            stage("training")

            result = training.train(history, cfg, cv=cv, on_stage=stage, on_round=rounds)
            stage("saving the package")
            result.package.save(out_dir)
            metrics = result.metrics
            write_json(metrics, out_dir / "metrics.json")
            registered = None
            if register:
                stage("logging the run and registering the model in MLflow")
                registered = registry.log_training(
                    out_dir, result, cfg.model_dump(), data_name=data.name
                )
    except RecoverscoreError as error:
        _fail(str(error))
    evaluation = result.evaluation
    out.print(_metrics_table(metrics))
    if result.cv is not None:
        out.print(_cv_table(result.cv))
    unchecked = result.package.unchecked_rules()
    if unchecked:
        err.print(
            f"[bold yellow]warning:[/] the training columns cannot check {', '.join(unchecked)}: "
            "scored rows will say so in their why line",
            highlight=False,
        )
    if result.overlap is not None:
        warn = not result.overlap.unsupported.empty
        (err if warn else out).print(
            ("[bold yellow]warning:[/] " if warn else "overlap: ") + result.overlap.message,
            highlight=False,
            soft_wrap=True,
        )
    if result.policies is not None:
        out.print(_off_policy_table(result.policies))
    if "truth_by_tier" in evaluation.tables:
        truth = evaluation.tables["truth_by_tier"].set_index("tier")
        out.print(_frame_table(truth, "predicted vs true P(recover), every tier", "tier"))
    if result.comparison is not None:
        out.print(
            _frame_table(
                evaluation.tables["tier_mix_safe_policy"].set_index("aging_bucket"),
                "safe policy: recommended tier by aging bucket (test set)",
                "bucket",
            )
        )
        capacity = result.comparison.attrs["capacity"]
        out.print(
            _frame_table(
                result.comparison.rename(columns=_SHORT_HEADERS),
                f"policies valued with the truth, with tier shares (capacity {capacity})",
                "policy",
            )
        )
    summary = (
        f"trained a {result.package.model.kind_} model on {int(metrics['train_rows']):,} rows, "
        f"tested on {int(metrics['test_rows']):,} ({len(result.data.rejected):,} rejected); "
        f"package in {out_dir}"
    )
    if registered is not None:
        page = f"models/{registry.MODEL_NAME}/versions/{registered.version}"
        summary += (
            f"; registered {registry.MODEL_NAME} version {registered.version} @challenger "
            f"(MLflow UI: {registry.ui_link(page, registry.tracking_uri())})"
        )
    out.print(summary, highlight=False, soft_wrap=True)


@app.command("evaluate-policy")
def evaluate_policy_command(
    history: Path = typer.Option(..., "--history", help="Logged history with tiers and outcomes."),
    model: str = typer.Option(
        "champion", "--model", help="champion, challenger, a version, a URI or a package folder."
    ),
    policies: list[PolicyChoice] | None = typer.Option(
        None, "--policy", help="Policy to judge (repeat for several; default: all)."
    ),
    folds: int = typer.Option(5, "--folds", min=2, max=20, help="Folds for cross-fitting."),
    resamples: int = typer.Option(1000, "--resamples", min=100, help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Fixes folds and resamples."),
    track: bool = typer.Option(True, "--track/--no-track", help="Log the estimates to MLflow."),
) -> None:
    """Off-policy estimates of what each policy would have earned on a logged history."""
    from recoverscore.scoring.policy_evaluation import evaluate_policies

    registry = _registry()
    try:
        loaded = registry.load_package(model)
        chosen = tuple(p.value for p in policies) if policies else tuple(PolicyChoice)
        with err.status("cross-fitting the propensities and the reward model"):
            evaluation = evaluate_policies(
                read_table(history),
                loaded.package,
                chosen,
                folds=folds,
                n_resamples=resamples,
                seed=seed,
            )
        run_id = registry.log_policy_evaluation(evaluation, loaded) if track else None
    except RecoverscoreError as error:
        _fail(str(error))
    out.print(
        f"propensities {evaluation.propensity_source}: {evaluation.note}",
        highlight=False,
        soft_wrap=True,
    )
    warn = not evaluation.overlap.unsupported.empty
    (err if warn else out).print(
        ("[bold yellow]warning:[/] " if warn else "overlap: ") + evaluation.overlap.message,
        highlight=False,
        soft_wrap=True,
    )
    out.print(_off_policy_table(evaluation))
    out.print(_off_policy_table(evaluation, "recovery_rate"))
    line = f"{evaluation.rows:,} debts judged with model {loaded.version}"
    if evaluation.rejected:
        line += f" ({evaluation.rejected:,} rows rejected by its input contract)"
    if run_id is not None:
        line += f"; MLflow run {run_id}"
    out.print(line, highlight=False, soft_wrap=True)


def _text_table(frame: pd.DataFrame, title: str, index_name: str) -> Table:
    """A table of already formatted text cells."""
    table = Table(index_name, *frame.columns, title=title)
    for label, row in frame.iterrows():
        table.add_row(str(label), *(str(v) for v in row))
    return table


def _with_interval(value: float, low: float, high: float, show) -> str:
    if pd.isna(value):
        return ""
    return show(value) if pd.isna(low) else f"{show(value)} ({show(low)} to {show(high)})"


def _backtest_tables(result) -> list[Table]:
    """The join counts, quality beside training, and the tables by tier, decile and cell."""
    from recoverscore.modelling.explain import tier_names

    counts, rate = result.counts, "{:.3f}".format
    join = pd.DataFrame(
        {
            "matched": [f"{counts['matched']:,}"],
            "rejected": [f"{counts['rejected']:,}"],
            "scored debts": [f"{counts['scored_debts']:,} in {counts['runs']} file(s)"],
            "scored in several runs": [f"{counts['scored_in_several_runs']:,}"],
            "still open": [f"{counts['scored_without_outcome']:,}"],
        },
        index=[f"{counts['outcomes_in']:,}"],
    )
    quality = result.quality.map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    tiers = result.by_tier
    by_tier = pd.DataFrame(
        {
            "debts": tiers["debts"].map("{:,}".format),
            "realised (95%)": [
                _with_interval(r.realised_rate, r.rate_ci_low, r.rate_ci_high, rate)
                for r in tiers.itertuples()
            ],
            "predicted": tiers["predicted_rate"].map(rate),
            "z": tiers["z"].map("{:+.1f}".format),
            "p-value": tiers["p_value"].map("{:.2g}".format),
            "net per debt": tiers["realised_net_per_debt"].map(_money),
            "expected": tiers["expected_net_per_debt"].map(_money),
        },
        index=tiers.index,
    ).rename(index=tier_names("en"))
    deciles = result.by_decile
    by_decile = pd.DataFrame(
        {
            "debts": deciles["debts"].map("{:,}".format),
            "predicted": deciles["predicted_rate"].map(rate),
            "realised": deciles["realised_rate"].map(rate),
            "z": deciles["z"].map("{:+.1f}".format),
        },
        index=deciles.index,
    )
    test = result.calibration
    tables = [
        _text_table(join, "outcomes joined to the scored runs", "outcomes"),
        _text_table(quality.rename(columns={"realised": "on outcomes"}), "model quality", "metric"),
        _text_table(by_tier, "recovery by tier worked: realised vs predicted", "tier"),
        _text_table(
            by_decile,
            f"by score decile, 1 = highest (chi-square {test.statistic:.1f} on {test.df}, "
            f"p = {test.p_value:.2g})",
            "decile",
        ),
    ]
    if not result.by_cell.empty:
        cells = result.by_cell
        by_cell = pd.DataFrame(
            {
                "debts": cells["debts"].map("{:,}".format),
                "share": cells["share"].map("{:.1%}".format),
                "recovered": cells["realised_rate"].map(rate),
                "net per debt, CNY (95%)": [
                    _with_interval(r.net_per_debt, r.net_ci_low, r.net_ci_high, _money)
                    for r in cells.itertuples()
                ],
                "expected": cells["expected_net_per_debt"].map(_money),
            },
            index=cells.index,
        )
        tables.append(_text_table(by_cell, "realised net recovery per debtor by cell", "cell"))
    if not result.comparison.empty:
        diff = result.comparison
        comparison = pd.DataFrame(
            {
                "debts": diff["debts"].map("{:,}".format),
                "difference (Welch 95%)": [
                    _with_interval(r.difference, r.ci_low, r.ci_high, _money)
                    for r in diff.itertuples()
                ],
                "lift": diff["lift"].map(lambda v: "" if pd.isna(v) else f"{v:+.1%}"),
                "p-value": diff["p_value"].map(lambda v: "" if pd.isna(v) else f"{v:.2g}"),
                "bootstrap 95%": [
                    ""
                    if pd.isna(r.boot_ci_low)
                    else f"{_money(r.boot_ci_low)} to {_money(r.boot_ci_high)}"
                    for r in diff.itertuples()
                ],
            },
            index=diff.index,
        )
        tables.append(
            _text_table(comparison, f"challenger cells against {result.champion}", "challenger")
        )
    return tables


@app.command("backtest")
def backtest_command(
    scored: list[Path] = typer.Option(
        ..., "--scored", help="A scored file; repeat for several runs, oldest first."
    ),
    outcomes: Path = typer.Option(
        ..., "--outcomes", help="Realised outcomes (recoverscore schema outcomes)."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="The model that scored them, for its training figures (a package folder, "
        "champion, a version...).",
    ),
    champion: str = typer.Option(
        "champion", "--champion", help="The cell the other cells are compared with."
    ),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Write the outcome rows not used, with reasons (.csv/.parquet)."
    ),
    alpha: float = typer.Option(
        0.01, "--alpha", min=0.0, max=1.0, help="Warn when a departure's p-value is below this."
    ),
    tolerance: float = typer.Option(
        0.02, "--tolerance", min=0.0, max=1.0, help="...and its recovery-rate gap at least this."
    ),
    resamples: int = typer.Option(
        1000, "--resamples", min=0, help="Bootstrap resamples beside Welch's interval (0: none)."
    ),
    seed: int = typer.Option(0, "--seed", help="Fixes the bootstrap."),
    track: bool = typer.Option(True, "--track/--no-track", help="Log the backtest to MLflow."),
) -> None:
    """Realised outcomes against the model: by tier, decile and experiment cell."""
    from recoverscore.scoring.backtest import run_backtest

    registry = _registry()
    try:
        if track:
            registry.connect()
        loaded = registry.load_package(model) if model is not None else None
        frames = [read_table(path) for path in scored]
        with err.status("joining the outcomes and testing"):
            result = run_backtest(
                frames,
                read_table(outcomes),
                package=None if loaded is None else loaded.package,
                version=None if loaded is None else loaded.version,
                names=[str(path) for path in scored],
                champion=champion,
                alpha=alpha,
                tolerance=tolerance,
                resamples=resamples,
                seed=seed,
            )
        if rejects is not None and len(result.joined.rejects):
            write_chunks([result.joined.rejects], rejects)
        settings = {"alpha": alpha, "tolerance": tolerance, "resamples": resamples}
        run_id = registry.log_backtest(result, loaded, settings) if track else None
    except RecoverscoreError as error:
        _fail(str(error))
    for table in _backtest_tables(result):
        out.print(table)
    for text in result.warnings:
        err.print(f"[bold yellow]warning:[/] {text}", highlight=False, soft_wrap=True)
    for text in result.notes:
        out.print(f"note: {text}", highlight=False, soft_wrap=True)
    counts = result.counts
    line = (
        f"backtested {counts['matched']:,} of {counts['outcomes_in']:,} outcomes against model "
        f"{', '.join(result.model_versions)}"
    )
    if counts["rejected"]:
        line += f"; {counts['rejected']:,} rejected" + (f" -> {rejects}" if rejects else "")
    if run_id is not None:
        line += f"; MLflow run {run_id}"
    out.print(line, highlight=False, soft_wrap=True)
    if counts["rejected"]:
        raise typer.Exit(EXIT_INVALID)


@app.command("simulate-outcomes")
def simulate_outcomes_command(
    scored: Path = typer.Option(..., "--scored", help="A scored file of the world's debts."),
    world: Path = typer.Option(
        ..., "--world", help="The synthetic file the portfolio came from (with p_true_<tier>)."
    ),
    out_path: Path = typer.Option(..., "--out", help="Outcomes file to write (.csv/.parquet)."),
    history_out: Path | None = typer.Option(
        None, "--history-out", help="Also write the debts as history rows for retraining."
    ),
    seed: int = typer.Option(0, "--seed", help="Fixes the draws."),
    config: Path | None = typer.Option(None, "--config", help="World config YAML."),
) -> None:
    """Draw outcomes of scored synthetic debts from the truth of the tier each was given."""
    from recoverscore.scoring.simulate import simulate_outcomes

    try:
        table_format(out_path)
        if history_out is not None:
            table_format(history_out)
        simulated = simulate_outcomes(
            read_table(scored),
            read_table(world),
            seed=seed,
            config=load_synthetic_config(config),
        )
        write_chunks([simulated.outcomes], out_path)
        if history_out is not None:
            write_chunks([simulated.history], history_out)
    except RecoverscoreError as error:
        _fail(str(error))
    drawn = simulated.outcomes
    net = (drawn["amount_recovered"] - drawn["costs"]).mean()
    line = (
        f"drew outcomes for {len(drawn):,} debts (recovered {drawn['recovered'].mean():.1%}, "
        f"net {_money(net)} CNY per debt) -> {out_path}"
    )
    if simulated.unworked:
        line += f"; {simulated.unworked:,} scored rows had no tier and were left out"
    if history_out is not None:
        line += f"; history rows -> {history_out}"
    out.print(line, highlight=False, soft_wrap=True)


@app.command("experiment-size")
def experiment_size_command(
    history: Path = typer.Option(
        ..., "--history", help="A history or outcomes file: its realised net recovery's spread."
    ),
    lift: float = typer.Option(
        0.05, "--lift", help="Relative lift in net recovery per debtor to detect (0.05 = 5%)."
    ),
    power: float = typer.Option(0.8, "--power", help="Chance of detecting it."),
    alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
    monthly: int | None = typer.Option(
        None, "--monthly", min=1, help="Debts a month entering the champion and challenger cells."
    ),
    share: float | None = typer.Option(
        None,
        "--share",
        help="Challenger share of those debts (default: the smallest that fits "
        "--months, else an even split).",
    ),
    months: float | None = typer.Option(
        None, "--months", help="How long the experiment may run (needs --monthly)."
    ),
) -> None:
    """Debts, challenger share and months a champion/challenger experiment needs."""
    from recoverscore.scoring.sizing import experiment_size, realised_net

    try:
        size = experiment_size(
            realised_net(read_table(history), str(history)),
            lift,
            power=power,
            alpha=alpha,
            monthly=monthly,
            share=share,
            months=months,
        )
    except RecoverscoreError as error:
        _fail(str(error))
    shown = size.table.rename(index="{:.0%}".format).rename(columns=lambda c: c.replace("_", " "))
    shown = shown.map("{:,.0f}".format).assign(
        **({"months": size.table["months"].map("{:.1f}".format).to_numpy()} if monthly else {})
    )
    out.print(_text_table(shown, "debts needed by challenger share", "challenger share"))
    out.print(
        f"net recovery per debtor in {history}: mean {_money(size.mean)} CNY, standard "
        f"deviation {_money(size.sd)} CNY over {size.observed:,} debts",
        highlight=False,
        soft_wrap=True,
    )
    out.print(size.sentence(), highlight=False, soft_wrap=True)


@app.command("promote")
def promote_command(
    version: str = typer.Argument(
        ..., help="Registered version to promote, or an alias (e.g. challenger)."
    ),
    alias: str = typer.Option(
        "champion",
        "--alias",
        help="Alias to move onto the version: champion, challenger, or your own x-NAME.",
    ),
) -> None:
    """Move the ``champion`` alias (or another) onto a registered model version."""
    registry = _registry()

    try:
        number = registry.promote(version, alias)
    except RecoverscoreError as error:
        _fail(str(error))
    out.print(
        f"{registry.MODEL_NAME} version {number} is now @{alias}", highlight=False, soft_wrap=True
    )


@alias_app.command("delete")
def alias_delete_command(
    name: str = typer.Argument(..., help="The alias to remove (champion, challenger, x-NAME)."),
) -> None:
    """Remove an alias from the registered model; the version it named stays registered."""
    from recoverscore import registry

    try:
        number = registry.delete_alias(name)
    except RecoverscoreError as error:
        _fail(str(error))
    out.print(
        f"removed @{name} (it named {registry.MODEL_NAME} version {number}, which stays "
        "registered)",
        highlight=False,
        soft_wrap=True,
    )


@app.command("models")
def models_command() -> None:
    """Registered versions with their aliases and test AUC."""
    registry = _registry()

    try:
        versions = registry.describe_versions()
    except RecoverscoreError as error:
        _fail(str(error))
    table = Table(
        "version",
        "aliases",
        "test AUC",
        "created (UTC)",
        "run",
        title=f"{registry.MODEL_NAME} versions",
    )
    for row in versions.itertuples(index=False):
        auc = "" if pd.isna(row.test_auc) else f"{row.test_auc:.4f}"
        table.add_row(row.version, row.aliases, auc, f"{row.created:%Y-%m-%d %H:%M}", row.run_id)
    out.print(table)
    if versions.empty:
        out.print("no registered versions yet: run `recoverscore train`", highlight=False)


def _scoring_tables(result) -> tuple[Table, Table | None]:
    """The run summary: counts that reconcile, and the tier mix with expected net value."""
    from recoverscore.data.schemas import TIERS

    stats = result.stats
    counts = Table("rows in", "scored", "rejected", "reconciled", title="batch scoring")
    counts.add_row(
        f"{stats['rows_in']:,}",
        f"{stats['scored']:,}",
        f"{stats['rejected']:,}",
        "yes: every row scored or rejected" if result.reconciled else "NO",
    )
    mix = Table("tier", "debts", "share", "expected net CNY", title="recommended tiers")
    for tier in TIERS:
        n = stats["tiers"][tier]
        share = n / stats["scored"] if stats["scored"] else 0.0
        mix.add_row(tier, f"{n:,}", f"{share:.1%}", _cell(stats["net_value"][tier], False))
    return counts, mix


@app.command("score")
def score_command(
    input_path: Path = typer.Option(
        ..., "--input", help="Portfolio: CSV, Parquet, or a folder of Parquet files."
    ),
    output: Path = typer.Option(..., "--output", help="Scored output: .parquet or .csv."),
    model: str = typer.Option(
        "champion",
        "--model",
        help="champion, challenger, a version number, a models:/ URI or a package folder.",
    ),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Rejected rows with reasons (default: <output>.rejects.<ext>)."
    ),
    report: Path | None = typer.Option(
        None, "--drift-report", help="Drift JSON (default: <output>.drift.json)."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Decision date; overrides the file's as_of (default: it, or today)."
    ),
    explain_rows: bool = typer.Option(
        True, "--explain/--no-explain", help="SHAP reasons per debtor (the slow part)."
    ),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Reasons per debtor."),
    policy: PolicyChoice = typer.Option(
        PolicyChoice.safe,
        "--policy",
        help="Decision rule: safe (default), value, matrix (score x aging), baseline (today's).",
    ),
    language: LanguageChoice = typer.Option(LanguageChoice.en, "--language", help="Reasons in."),
    engine: EngineChoice = typer.Option(EngineChoice.local, "--engine", help="Where to score."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default: a local cluster)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run from its last completed batch."
    ),
    batch_size: int = typer.Option(100_000, "--batch-size", min=1, help="Rows per batch."),
    track: bool = typer.Option(
        True, "--track/--no-track", help="Log the run's counts, tier mix and drift to MLflow."
    ),
    experiment_file: Path | None = typer.Option(
        None,
        "--experiment",
        help="A strategy experiment (YAML: name, cells) replacing the package's; recorded in "
        "each row's overrides.",
    ),
) -> None:
    """Score a portfolio with a registered model: tiers, values, reasons, rejects and drift."""
    from recoverscore.config import load_config
    from recoverscore.scoring import batch, drift
    from recoverscore.scoring.pipeline import Scorer, ScoringOptions
    from recoverscore.strategy.experiment import Experiment

    registry = _registry()
    try:
        loaded = registry.load_package(model)
        package = loaded.package
        if experiment_file is not None:
            package = package.with_experiment(load_config(experiment_file, Experiment))
        design = package.policy.experiment
        challengers = {
            cell.model: registry.load_package(cell.model).package
            for cell in (design.cells if design is not None else [])
            if cell.model
        }
        options = ScoringOptions(
            as_of=_date(as_of, "--as-of"),
            policy=policy.value,
            explain=explain_rows,
            top_k=top_k,
            language=language.value,
        )
        scorer = Scorer(package, options, loaded.version, challengers)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rows]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as progress:

            def show() -> None:
                task = progress.tasks[0]
                done, total, elapsed = int(task.completed), task.total, task.elapsed
                rows = f"{done:,} of {int(total):,} rows" if total else f"{done:,} rows"
                rate = f"{done / elapsed:,.0f} rows/s" if done and elapsed else ""
                progress.update(task.id, rows=rows, rate=rate)

            def stage(text: str, rows: int | None) -> None:
                _new_pass(progress, text, rows, rows="", rate="")
                show()

            def advance(rows: int) -> None:
                progress.advance(progress.tasks[0].id, rows)
                show()

            stage("reading", None)

            result = batch.run(
                input_path,
                output,
                scorer,
                rejects=rejects,
                report=report,
                batch_size=batch_size,
                resume=resume,
                engine=engine.value,
                scheduler=scheduler,
                on_rows=advance,
                on_stage=stage,
                model_dir=Path(model) if Path(model).is_dir() else None,
            )
            run_link = None
            if track:
                stage("logging the run to MLflow", None)
                run_id = registry.log_scoring(
                    result, scorer, loaded.uri, engine.value, input_name=input_path.name
                )
                run_link = registry.run_link(run_id)
    except RecoverscoreError as error:
        _fail(str(error))
    counts, mix = _scoring_tables(result)
    out.print(counts)
    out.print(mix)
    flags = result.stats.get("flags", {})
    if flags:
        table = Table("flag", "debts", title="flags (care notices; no tier worth its cost)")
        for flag, n in sorted(flags.items()):
            table.add_row(flag, f"{n:,}")
        out.print(table)
    if result.stats.get("cells"):
        cells = Table("cell", "debts", "share", title=f"experiment {design.name}")
        total = sum(result.stats["cells"].values())
        for name, n in sorted(result.stats["cells"].items(), key=lambda kv: -kv[1]):
            cells.add_row(name, f"{n:,}", f"{n / total:.1%}")
        out.print(cells)
    checks = result.stats["checks"]
    if checks:
        table = Table("column: check", "rows", title="rejected rows by failed check")
        for check, n in sorted(checks.items(), key=lambda kv: -kv[1])[:15]:
            table.add_row(check, f"{n:,}")
        out.print(table)
    if result.drift is not None:
        moved = drift.notable(result.drift)
        moved = moved[moved["status"].isin(["moderate", "drift"])]
        if len(moved):
            table = Table("column", "PSI", "reading", "p-value", title="drift from training")
            for row in moved.itertuples(index=False):
                p_value = "" if pd.isna(row.p_value) else f"{row.p_value:.2g}"
                table.add_row(
                    drift.label(row.group, row.column), f"{row.psi:.2f}", row.status, p_value
                )
            out.print(table)
        headline = drift.headline(result.drift)
        if (result.drift["status"] == "drift").any():
            err.print(f"[bold yellow]warning:[/] {headline}", highlight=False, soft_wrap=True)
        else:
            out.print(f"drift: {headline}", highlight=False, soft_wrap=True)
    seconds = result.stats.get("seconds", {})
    busy = sum(seconds.values()) or 1.0
    line = (
        f"scored {result.stats['scored']:,} of {result.stats['rows_in']:,} rows with model "
        f"{loaded.version} in {result.seconds:.1f} s "
        f"({result.stats['rows_in'] / max(result.seconds, 1e-9):,.0f} rows/s; validation "
        f"{seconds.get('validate', 0.0) / busy:.0%} of scoring time"
    )
    if result.resumed_batches:
        line += f"; {result.resumed_batches} batches kept from the interrupted run"
    line += f") -> {result.output}; rejects -> {result.rejects}"
    if result.report is not None:
        line += f"; drift -> {result.report}"
    if run_link is not None:
        line += f"; MLflow run {run_link}"
    out.print(line, highlight=False, soft_wrap=True)
    if result.stats["rejected"]:
        raise typer.Exit(EXIT_INVALID)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
