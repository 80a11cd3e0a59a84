"""Names the pipeline shares with the cluster: the image, the secrets, the config map.

infra/ (Dockerfile, docker-compose, kustomize manifests) creates exactly these; a test checks
that both sides agree.
"""

from __future__ import annotations

from lowlight import __version__

# The one component image (infra/Dockerfile). Push it to your registry and compile with
# `lowlight pipeline compile --image REGISTRY/lowlight:TAG`.
IMAGE_NAME = "lowlight"
IMAGE = f"{IMAGE_NAME}:{__version__}"

# Non-secret settings every step reads (where MLflow and the object store are).
CONFIG_MAP = "lowlight-config"
CONFIG_ENV = (
    "MLFLOW_TRACKING_URI",
    "AWS_ENDPOINT_URL",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
)

# Kubernetes secrets -> environment variables of the steps (key name = env name).
S3_SECRET = "lowlight-s3"
S3_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
MLFLOW_SECRET = "lowlight-mlflow"
MLFLOW_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
SECRETS = {S3_SECRET: S3_ENV, MLFLOW_SECRET: MLFLOW_ENV}

# The service account the pipeline's pods run as (infra/k8s: minimal RBAC).
SERVICE_ACCOUNT = "lowlight-pipeline"
NAMESPACE = "lowlight"

# Where the MLflow server keeps the artifacts it proxies (`mlflow-artifacts:/PATH` is
# `<this>PATH`): infra/k8s/base's ARTIFACTS_DESTINATION and docker-compose's.
ARTIFACTS_DESTINATION = "s3://mlflow/"

# GPU request of the train step (the NVIDIA device plugin's resource name).
ACCELERATOR = "nvidia.com/gpu"
