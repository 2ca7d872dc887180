"""The MLflow pyfunc that serves a recoverscore model, logged as *models-from-code*.

MLflow's default for a custom ``PythonModel`` is to cloudpickle the instance, which ties the
registered model to the exact Python and library versions that pickled it and makes loading it
equivalent to running arbitrary code. Logged from this file instead, the registered model holds
only this source file, LightGBM's native text model and JSON (the ``package`` artifact written by
``RecoveryModel.save``): nothing is unpickled when it is loaded or served.

``predict`` takes raw portfolio rows, the way they arrive from files or a serving request (dates as
ISO strings or datetimes, booleans as booleans or text), validates them against the same
portfolio contract as the CLI, and returns what batch scoring writes for them: the probability
under every tier, the recommended tier with its expected net value, the guardrails' exclusions
and the SHAP reasons, computed by the same ``Scorer``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from recoverscore.data import schemas
from recoverscore.errors import RecoverscoreError
from recoverscore.modelling.model import RecoveryModel
from recoverscore.scoring.pipeline import SERVING_PARAMS, Scorer, ScoringOptions

_SHOWN_FAILURES = 5


def _bad_request(message: str) -> MlflowException:
    """An error the scoring server answers with HTTP 400: the request, not the server, is wrong."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _describe_failures(failures: pd.DataFrame) -> str:
    """One line naming the first few failing cells, so a serving client can fix its request."""
    shown = [
        f"row {row} {column} ({check}: {value!r})"
        for row, column, check, value in failures.head(_SHOWN_FAILURES).itertuples(index=False)
    ]
    more = len(failures) - len(shown)
    suffix = f"; and {more} more" if more > 0 else ""
    return (
        f"{len(failures)} input cell(s) break the portfolio contract: " + "; ".join(shown) + suffix
    )


class RecoverscorePyfunc(mlflow.pyfunc.PythonModel):
    """Raw portfolio rows in; the scored output of batch scoring out, one row per debtor."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Rebuild the model from its LightGBM text and JSON package (no pickle involved)."""
        self.model = RecoveryModel.load(context.artifacts["package"])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Validate the rows like the CLI does, then score them as batch scoring does.

        ``params`` (all optional): ``explain``, ``top_k``, ``language``, ``policy``. Rows are
        numbered from 1 in error messages, like the CLI's validation report; a request with a
        bad row is refused whole, naming the cells. A frame without ``as_of`` is scored as of
        today.
        """
        if not isinstance(model_input, pd.DataFrame):
            raise _bad_request(
                f"expected a pandas DataFrame of portfolio rows, got {type(model_input).__name__}"
            )
        if "debtor_id" not in model_input.columns:
            raise _bad_request("the input has no debtor_id column")
        settings = {**SERVING_PARAMS, **(params or {})}
        frame = model_input
        if "as_of" not in frame.columns:
            frame = frame.assign(as_of=pd.Timestamp.today().normalize())
        try:
            options = ScoringOptions(
                rule=str(settings["policy"]),
                explain=bool(settings["explain"]),
                top_k=int(settings["top_k"]),
                language=str(settings["language"]),
            )
            report = schemas.validate(frame, schemas.Portfolio)
            if not report.is_valid:
                raise _bad_request(_describe_failures(report.failures))
            scored, _ = Scorer(self.model, options).score_valid(report.valid)
        except RecoverscoreError as error:
            raise _bad_request(str(error)) from None
        scored["as_of"] = scored["as_of"].dt.strftime("%Y-%m-%d")  # JSON-safe, as in CSV output
        return scored.reset_index(drop=True)


mlflow.models.set_model(RecoverscorePyfunc())
