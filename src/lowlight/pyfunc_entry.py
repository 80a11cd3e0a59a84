"""MLflow "models from code" entry point: the logged model is this file, not a pickle."""

import mlflow

from lowlight.pyfunc import LowlightModel

mlflow.models.set_model(LowlightModel())
