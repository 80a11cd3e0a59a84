#!/bin/sh
# Creates the buckets and the S3 user of lowlight in MinIO; safe to run again.
# Runs in the minio/mc image (docker-compose service `buckets`, Kubernetes Job `minio-buckets`).
# Env: MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD (MinIO's root), AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY (the lowlight-s3 secret: the user MLflow and the pipeline log in as).
set -eu

case "$AWS_SECRET_ACCESS_KEY$MINIO_ROOT_PASSWORD" in
  *CHANGE_ME*) echo "a secret still holds the CHANGE_ME placeholder, see infra/README.md" >&2; exit 1 ;;
esac

# MinIO may still be starting: `mc alias set` fails until it answers.
tries=0
until mc alias set local "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "MinIO at $MINIO_URL did not answer" >&2; exit 1; }
  sleep 2
done

# mlflow: MLflow's artifact store (--artifacts-destination s3://mlflow/);
# lowlight: the pipeline's data (s3://lowlight/raw/..., DVC remote).
for bucket in mlflow lowlight; do
  mc mb --ignore-existing "local/$bucket"
done

# A user limited to those two buckets, not MinIO's root, for MLflow and the pipeline.
cat > /tmp/lowlight-policy.json <<'POLICY'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
     "Resource": ["arn:aws:s3:::mlflow", "arn:aws:s3:::lowlight"]},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                   "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::mlflow/*", "arn:aws:s3:::lowlight/*"]}
  ]
}
POLICY
mc admin policy create local lowlight /tmp/lowlight-policy.json
mc admin user add local "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
mc admin policy attach local lowlight --user "$AWS_ACCESS_KEY_ID" 2>/dev/null \
  || echo "policy lowlight already attached to $AWS_ACCESS_KEY_ID"
echo "buckets mlflow, lowlight and user $AWS_ACCESS_KEY_ID ready"
