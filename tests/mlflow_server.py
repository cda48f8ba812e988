"""The real `mlflow server` lives in `evals.mlflow_server`, where the detection suite uses it too."""

from evals.mlflow_server import MLflowServer

__all__ = ["MLflowServer"]
