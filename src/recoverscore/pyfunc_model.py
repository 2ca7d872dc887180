"""The MLflow pyfunc that serves a recoverscore model, logged as *models-from-code*.

MLflow's default for a custom ``PythonModel`` is to cloudpickle the instance, which ties the
registered model to the exact Python and library versions that pickled it and makes loading it
equivalent to running arbitrary code. Logged from this file instead, the registered model holds
only this source file, LightGBM's native text model and JSON (the ``package`` artifact written by
``RecoveryModel.save``): nothing is unpickled when it is loaded or served.

``predict`` takes raw portfolio rows, the way they arrive from files or a serving request (dates as
ISO strings or datetimes, booleans as booleans or text), parses them with the same column parser
the CLI uses, and returns one row of counterfactual recovery probabilities per debtor.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from recoverscore import schemas
from recoverscore.errors import RecoverscoreError
from recoverscore.model import RecoveryModel

_SHOWN_FAILURES = 5


def _describe_failures(failures: pd.DataFrame) -> str:
    """One line naming the first few unreadable cells, so a serving client can fix its request."""
    shown = [
        f"row {row} {column} ({check}: {value!r})"
        for row, column, check, value in failures.head(_SHOWN_FAILURES).itertuples(index=False)
    ]
    more = len(failures) - len(shown)
    suffix = f"; and {more} more" if more > 0 else ""
    return f"{len(failures)} input cell(s) could not be read: " + "; ".join(shown) + suffix


class RecoverscorePyfunc(mlflow.pyfunc.PythonModel):
    """Raw portfolio rows in; ``debtor_id`` plus ``p_<tier>`` for every tier out."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Rebuild the model from its LightGBM text and JSON package (no pickle involved)."""
        self.model = RecoveryModel.load(context.artifacts["package"])

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Parse the rows like the CLI does, then score every tier for every debtor.

        Rows are numbered from 1 in error messages, like the CLI's validation report. A frame
        without ``as_of`` is scored as of today.
        """
        if not isinstance(model_input, pd.DataFrame):
            raise MlflowException(
                f"expected a pandas DataFrame of portfolio rows, got {type(model_input).__name__}"
            )
        if "debtor_id" not in model_input.columns:
            raise MlflowException("the input has no debtor_id column")
        frame = model_input.reset_index(drop=True)
        frame.index = pd.RangeIndex(1, len(frame) + 1)
        if "as_of" not in frame.columns:
            frame = frame.assign(as_of=pd.Timestamp.today().normalize())
        parsed, failures = schemas.parse_columns(frame, schemas.Portfolio)
        if not failures.empty:
            raise MlflowException(_describe_failures(failures))
        try:
            matrix = self.model.tier_matrix(parsed)
        except RecoverscoreError as error:
            raise MlflowException(str(error)) from None
        matrix.insert(0, "debtor_id", parsed["debtor_id"])
        return matrix.reset_index(drop=True)


mlflow.models.set_model(RecoverscorePyfunc())
