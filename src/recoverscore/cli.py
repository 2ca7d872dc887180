"""The ``recoverscore`` command line: the terminal edge of the library.

Exit codes: 0 success; 1 the data failed validation (for ``score``: some rows were rejected and
are in the rejects file; the others were scored); 2 a usage, file, model or configuration error,
printed as one line without a traceback.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from recoverscore.data import schemas
from recoverscore.data.synthetic import generate, load_synthetic_config
from recoverscore.data.tables import read_table, table_format, write_chunks, write_json
from recoverscore.errors import RecoverscoreError

EXIT_INVALID = 1
EXIT_ERROR = 2

app = typer.Typer(
    help="Recovery likelihood and collection-strategy scoring for debt portfolios.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Logs and pipes get a fixed width wide enough for the summary tables; terminals use their own.
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)


class SchemaChoice(StrEnum):
    auto = "auto"
    portfolio = "portfolio"
    history = "history"
    synthetic = "synthetic"


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
}
DOCUMENTED = {**{c.value: m for c, m in SCHEMAS.items()}, "scored": schemas.Scored}


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_ERROR)


def _date(value: str | None, option: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError):
        _fail(f"{option} {value!r} is not a date: use YYYY-MM-DD")
    return None


def _detect(frame: pd.DataFrame) -> SchemaChoice:
    """The richest schema whose distinguishing columns the file has."""
    if schemas.true_probability_column(schemas.TIERS[0]) in frame.columns:
        return SchemaChoice.synthetic
    if "given_tier" in frame.columns:
        return SchemaChoice.history
    return SchemaChoice.portfolio


@app.command("generate")
def generate_command(
    out_path: Path = typer.Option(..., "--out", help="Output file: .parquet or .csv."),
    rows: int = typer.Option(5000, "--rows", min=1, help="Number of debts."),
    seed: int = typer.Option(0, "--seed", help="Random seed: fixes the data."),
    as_of: str = typer.Option("2026-06-30", "--as-of", help="Decision date, YYYY-MM-DD."),
    config: Path | None = typer.Option(None, "--config", help="World config YAML."),
) -> None:
    """Generate a synthetic labelled portfolio with the true recovery probability per tier."""
    try:
        table_format(out_path)
        world = load_synthetic_config(config)
        chunks = generate(rows, seed, _date(as_of, "--as-of"), world)
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


def _failure_table(failures: pd.DataFrame, limit: int) -> Table:
    table = Table("row", "column", "check", "value", title="validation failures")
    for row in failures.head(limit).itertuples(index=False):
        shown_row = "(file)" if pd.isna(row.row) else str(int(row.row))
        table.add_row(shown_row, str(row.column), str(row.check), str(row.value))
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
        None, "--failures-out", help="Write the full failure table here (.csv or .parquet)."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Check against this model's own input contract (a package folder, champion, ...).",
    ),
) -> None:
    """Check a file against the portfolio, history or synthetic-history contract, or a model's."""
    try:
        frame = read_table(path)
        snapshot = _date(as_of, "--as-of") or pd.Timestamp.today().normalize()
        if model is not None:
            contract, label = _model_contract(model), f"model {model}'s input"
            report = contract.validate(frame, as_of=snapshot)
        else:
            choice = _detect(frame) if schema is SchemaChoice.auto else schema
            label = f"the {choice.value}"
            report = schemas.validate(frame, SCHEMAS[choice], as_of=snapshot)
        if failures_out is not None and not report.is_valid:
            write_chunks([report.failures], failures_out)
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
        choice = _detect(frame)
        if choice is SchemaChoice.portfolio:
            raise RecoverscoreError(f"{path} has no given_tier column: not a labelled history")
        report = schemas.validate(frame, SCHEMAS[choice])
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
    from recoverscore import registry

    return registry.load_package(model).package.contract


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
        table.add_row(row.policy, row.estimator.upper(), estimate, interval, ess, *extra)
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
    from recoverscore import registry, training
    from recoverscore.modelling.model import load_train_config

    try:
        cfg = load_train_config(config)
        if register:
            registry.connect()
        history = read_table(data)
        with err.status("training") as status:
            result = training.train(
                history, cfg, cv=cv, on_stage=lambda text: status.update(f"training: {text}")
            )
        result.package.save(out_dir)
        metrics = result.metrics
        write_json(metrics, out_dir / "metrics.json")
        registered = None
        if register:
            registered = registry.log_training(out_dir, result, cfg.model_dump())
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
        summary += f"; registered {registry.MODEL_NAME} version {registered.version} @challenger"
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
    from recoverscore import registry
    from recoverscore.scoring.policy_evaluation import evaluate_policies

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


@app.command("promote")
def promote_command(
    version: str = typer.Argument(
        ..., help="Registered version to promote, or an alias (e.g. challenger)."
    ),
    alias: str = typer.Option("champion", "--alias", help="Alias to move onto the version."),
) -> None:
    """Move the ``champion`` alias (or another) onto a registered model version."""
    from recoverscore import registry

    try:
        number = registry.promote(version, alias)
    except RecoverscoreError as error:
        _fail(str(error))
    out.print(
        f"{registry.MODEL_NAME} version {number} is now @{alias}", highlight=False, soft_wrap=True
    )


@app.command("models")
def models_command() -> None:
    """Registered versions with their aliases and test AUC."""
    from recoverscore import registry

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
    from recoverscore import registry
    from recoverscore.config import load_config
    from recoverscore.scoring import batch, drift
    from recoverscore.scoring.pipeline import Scorer, ScoringOptions
    from recoverscore.strategy.experiment import Experiment

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
            TextColumn("scoring"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("rows", total=None, rate="")

            def advance(rows: int) -> None:
                progress.advance(task, rows)
                elapsed = progress.tasks[0].elapsed or 0.0
                done = progress.tasks[0].completed
                progress.update(task, rate=f"{done / elapsed:,.0f} rows/s" if elapsed else "")

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
            )
        run_id = registry.log_scoring(result, scorer, loaded.uri, engine.value) if track else None
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
        drifted = result.drift[result.drift["status"] == "drift"]
        for row in drifted.itertuples(index=False):
            err.print(
                f"[bold yellow]warning:[/] {row.group} {row.column} has drifted from training "
                f"(PSI {row.psi:.2f} > {drift.WARN_PSI})",
                highlight=False,
            )
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
    if run_id is not None:
        line += f"; MLflow run {run_id}"
    out.print(line, highlight=False, soft_wrap=True)
    if result.stats["rejected"]:
        raise typer.Exit(EXIT_INVALID)


def main() -> None:
    """Console-script entry point."""
    app()
