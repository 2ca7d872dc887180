"""The MLflow pyfunc that serves a recoverscore model, logged as *models-from-code*.

MLflow's default for a custom ``PythonModel`` is to cloudpickle the instance, which ties the
registered model to the exact Python and library versions that pickled it and makes loading it
equivalent to running arbitrary code. Logged from this file instead, the registered model holds
only this source file and the model package written by ``ModelPackage.save`` (LightGBM's native
text model and JSON, under one hash): nothing is unpickled when it is loaded or served.

``predict`` takes raw portfolio rows the way they arrive from files or a serving request (dates
as ISO text or datetimes, booleans as booleans or text) and returns what batch scoring writes for
them, computed by the same ``Scorer.score_batch``. A request with a bad row is refused whole
(HTTP 400) naming the rows, columns and checks, never the values. No answer ever carries a stack
trace or an input value: an unexpected error is a generic 400 naming an error id, and its stack
(messages withheld, see ``errors.internal_report``) goes to the server's log under that id.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from recoverscore.data.facts import dates
from recoverscore.errors import RecoverscoreError, internal_report
from recoverscore.scoring.package import ModelPackage
from recoverscore.scoring.pipeline import Scorer, ScoringOptions

SERVING_PARAMS = {"explain": True, "top_k": 3, "language": "en", "policy": "safe", "as_of": ""}
"""What a serving request may set in ``params``, with the defaults batch scoring uses
(``as_of`` empty: the rows' own dates, else today)."""

_SHOWN_FAILURES = 5
_log = logging.getLogger(__name__)
_KEPT_SCORERS = 16


class BadRequest(MlflowException):
    """An error the scoring server answers with HTTP 400: the request, not the server, is wrong.

    MLflow's scoring server rewrites the message of an error from ``predict`` to ``Failed to
    predict data '<the request's rows>'. Error: ...``, which would put debtor ids and amounts in
    the response and the server's log. The message is set once, here; later rewrites are
    ignored.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self.__dict__["_message"]

    @message.setter
    def message(self, value: str) -> None:
        self.__dict__.setdefault("_message", value)


def _describe_rejects(rejects: pd.DataFrame) -> str:
    """One line naming the first few rejected rows and their failed checks (no values)."""
    shown = [
        f"row {row}: {checks}"
        for row, checks in rejects[["row", "failed_checks"]]
        .head(_SHOWN_FAILURES)
        .itertuples(index=False)
    ]
    more = len(rejects) - len(shown)
    suffix = f"; and {more} more" if more > 0 else ""
    return f"{len(rejects)} row(s) break the model's input contract: " + "; ".join(shown) + suffix


def registered_version(model_dir: Path) -> str | None:
    """The registry version of the logged model in ``model_dir``, looked up by its MLmodel
    file's run and model id (``None`` outside a registry: the package's label is used)."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        return None
    from recoverscore import registry  # the MLflow edge; imported only when serving

    spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    return registry.version_of_logged_model(spec.get("run_id"), spec.get("model_id"))


def options_from_params(params: dict[str, Any] | None) -> ScoringOptions:
    """Serving ``params`` (all optional) as scoring options; a bad value is a 400."""
    settings = {**SERVING_PARAMS, **(params or {})}
    try:
        return ScoringOptions(
            as_of=settings["as_of"] or None,  # YYYY-MM-DD only, as everywhere
            policy=str(settings["policy"]),
            explain=bool(settings["explain"]),
            top_k=int(settings["top_k"]),
            language=str(settings["language"]),
        )
    except (RecoverscoreError, ValueError, TypeError) as error:
        raise BadRequest(f"bad params: {error}") from None


class ScoredRows(pd.DataFrame):
    """The scored rows ``predict`` returns: a DataFrame whose JSON records come from one pass.

    MLflow's server answers with ``to_dict(orient="records")`` of the result; pandas builds
    those a column at a time, about 0.8 ms for one debtor's 27 columns, a tenth of the whole
    request. The records here are the same dicts (Python values, ``NaN`` and ``None`` as
    pandas gives them) from one conversion. Anything derived from it is a plain DataFrame.
    """

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def to_dict(self, orient: str = "dict", *, into: type = dict, index: bool = True) -> object:
        if orient != "records" or into is not dict:
            return super().to_dict(orient, into=into, index=index)
        columns = self.columns.tolist()
        return [dict(zip(columns, row, strict=True)) for row in self.to_numpy(object).tolist()]


class RecoverscorePyfunc(mlflow.pyfunc.PythonModel):
    """Raw portfolio rows in; the scored output of batch scoring out, one row per debtor.

    A ``Scorer`` is kept per set of options (a few at most: the same options come back request
    after request), so what it caches (the version label, the unchecked rules) is worked out
    once, not per request.
    """

    package: ModelPackage
    version: str | None = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Load the model package (hash-checked, no pickle) and the version it is registered as."""
        path = Path(context.artifacts["package"])
        self.package = ModelPackage.load(path)
        self.version = registered_version(path.parents[1])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> ScoredRows:
        """Score the rows as batch scoring does; refuse the request if any row is bad.

        ``params`` (all optional): ``explain``, ``top_k``, ``language``, ``policy``, ``as_of``.
        Rows are numbered from 1 in error messages, like the CLI's validation report.
        """
        if not isinstance(model_input, pd.DataFrame):
            raise BadRequest(
                f"expected a table of portfolio rows, got {type(model_input).__name__}"
            )
        if model_input.empty:
            raise BadRequest("the request has no rows to score")
        scorer = self._scorer(options_from_params(params))
        try:
            result = scorer.score_batch(model_input.reset_index(drop=True))
        except RecoverscoreError as error:
            raise BadRequest(str(error)) from None
        except Exception as error:  # a bug: its stack goes to the log, never to the client
            ticket = uuid.uuid4().hex[:12]
            _log.error(
                "internal error %s while scoring a request:\n%s", ticket, internal_report(error)
            )
            raise BadRequest(
                f"the request could not be scored: internal error {ticket} (the server log has "
                "the details)"
            ) from None
        if len(result.rejects):
            raise BadRequest(_describe_rejects(result.rejects))
        scored = result.scored
        scored["as_of"] = np.datetime_as_string(dates(scored["as_of"]), unit="D")  # JSON-safe
        return ScoredRows(scored)

    def _scorer(self, options: ScoringOptions) -> Scorer:
        scorers = self.__dict__.setdefault("_scorers", {})
        if options not in scorers:
            if len(scorers) >= _KEPT_SCORERS:
                scorers.clear()
            scorers[options] = Scorer(self.package, options, self.version, tally=False)
        return scorers[options]


mlflow.models.set_model(RecoverscorePyfunc())
