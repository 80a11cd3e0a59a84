#!/usr/bin/env python3
"""Create (or re-password) the MLflow user the pipeline logs in as; safe to run again.

Installed in the lowlight image as `lowlight-mlflow-create-user`; run once after the MLflow
server is up (a one-shot service in docker-compose, a Job in Kubernetes). It logs in as the
admin of MLflow's basic-auth app and makes sure the user in MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD (the `lowlight-mlflow` secret) exists with that password. The user
is not an admin: it creates its own experiments and models (and so manages them) and reads
everything else (the server's default permission).

Environment: MLFLOW_TRACKING_URI, MLFLOW_AUTH_ADMIN_USERNAME, MLFLOW_AUTH_ADMIN_PASSWORD,
MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD.
"""

from __future__ import annotations

import os
import sys
import time

import requests

# The server may still be starting (migrations on a fresh database take a while).
HEALTH_WAIT_S = 300


def wait_healthy(base: str, wait_s: float = HEALTH_WAIT_S) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if requests.get(f"{base}/health", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"MLflow at {base} not healthy within {wait_s:.0f} s")
        time.sleep(3)


def ensure_user(base: str, admin: tuple[str, str], username: str, password: str) -> str:
    """Create `username`, or set its password when it exists; return what was done."""
    api = f"{base}/api/2.0/mlflow/users"
    if username == admin[0]:
        raise SystemExit("MLFLOW_TRACKING_USERNAME must differ from the admin user")
    found = requests.get(f"{api}/get", params={"username": username}, auth=admin, timeout=30)
    if found.status_code == 404:
        body = {"username": username, "password": password}
        r = requests.post(f"{api}/create", json=body, auth=admin, timeout=30)
        done = "created"
    else:
        found.raise_for_status()
        body = {"username": username, "password": password}
        r = requests.patch(f"{api}/update-password", json=body, auth=admin, timeout=30)
        done = "password set"
    if not r.ok:
        raise SystemExit(f"{r.request.method} {r.url}: {r.status_code} {r.text[:500]}")
    return done


def main() -> None:
    env = os.environ
    base = env["MLFLOW_TRACKING_URI"].rstrip("/")
    admin = (env["MLFLOW_AUTH_ADMIN_USERNAME"], env["MLFLOW_AUTH_ADMIN_PASSWORD"])
    user = env["MLFLOW_TRACKING_USERNAME"]
    wait_healthy(base)
    done = ensure_user(base, admin, user, env["MLFLOW_TRACKING_PASSWORD"])
    print(f"MLflow user {user!r}: {done}", file=sys.stderr)


if __name__ == "__main__":
    main()
