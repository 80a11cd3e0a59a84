#!/usr/bin/env python3
"""Start MLflow's tracking server with basic auth, configured from the environment.

Installed in the lowlight image as `lowlight-mlflow-server`; docker-compose and the Kubernetes
Deployment run `lowlight-mlflow-server ARGS...`, which becomes
`mlflow server --app-name basic-auth ARGS...`.

MLflow's basic-auth app reads its settings from an ini file (MLFLOW_AUTH_CONFIG_PATH). This
writes that file at start, so nothing about the deployment is baked into the image, and makes
sure the auth app's own database exists next to the tracking database.

Environment:
  MLFLOW_AUTH_DATABASE_URI        user store of the auth app
                                  (default postgresql+psycopg2:///mlflow_auth)
  MLFLOW_AUTH_DEFAULT_PERMISSION  what a user may do on others' experiments and models
                                  (READ, USE, EDIT, MANAGE, NO_PERMISSIONS; default READ)
  MLFLOW_AUTH_CONFIG_PATH         where to write the ini (default: a private temp folder)
  PGHOST, PGPORT, PGUSER, PGPASSWORD   libpq's own variables: a Postgres URI without host or
                                  user (postgresql+psycopg2:///mlflow) takes them from here, so
                                  the password never appears in a URI, a file or `ps`
Read by MLflow itself: MLFLOW_AUTH_ADMIN_USERNAME / MLFLOW_AUTH_ADMIN_PASSWORD (the admin user
created on the first start) and MLFLOW_FLASK_SERVER_SECRET_KEY (CSRF key, the same on every
replica).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("lowlight-mlflow-server")

DEFAULT_AUTH_DATABASE_URI = "postgresql+psycopg2:///mlflow_auth"
# Secrets that must not still hold the placeholder of the committed templates.
SECRET_ENV = (
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
)
PLACEHOLDER = "CHANGE_ME"
# Postgres may start after this container (Kubernetes has no depends_on): wait this long.
DATABASE_WAIT_S = 120


def check_secrets(env: dict[str, str]) -> None:
    """Refuse to start with a placeholder password from infra/.env.example or *.env.example."""
    left = [name for name in SECRET_ENV if PLACEHOLDER in env.get(name, "")]
    if left:
        raise SystemExit(
            f"{', '.join(left)} still hold the {PLACEHOLDER} placeholder: put real values in "
            "infra/.env (docker compose) or your secret env files (Kubernetes), see infra/README.md"
        )


def auth_config(env: dict[str, str]) -> str:
    """The ini text of MLflow's basic-auth app (admin credentials stay in the environment)."""
    uri = env.get("MLFLOW_AUTH_DATABASE_URI") or DEFAULT_AUTH_DATABASE_URI
    permission = env.get("MLFLOW_AUTH_DEFAULT_PERMISSION") or "READ"
    # configparser interpolates '%': a URL-encoded password needs '%%'.
    return (
        "[mlflow]\n"
        f"default_permission = {permission}\n"
        f"database_uri = {uri.replace('%', '%%')}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )


def write_auth_config(env: dict[str, str]) -> Path:
    """Write the ini where MLFLOW_AUTH_CONFIG_PATH says (or a private temp file); return it."""
    target = env.get("MLFLOW_AUTH_CONFIG_PATH")
    path = Path(target) if target else Path(tempfile.mkdtemp(prefix="mlflow-auth-")) / "auth.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(auth_config(env))
    return path


def ensure_database(uri: str, wait_s: float = DATABASE_WAIT_S) -> None:
    """Create the Postgres database named in `uri` when it is missing (no-op for other stores)."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if not url.drivername.startswith("postgresql") or not url.database:
        return
    import psycopg2
    from psycopg2 import errors, sql

    # Unset parts (host, user, password) come from libpq's PG* variables.
    given = {"host": url.host, "port": url.port, "user": url.username, "password": url.password}
    conninfo = {k: v for k, v in given.items() if v}
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn = psycopg2.connect(dbname="postgres", connect_timeout=5, **conninfo)
            break
        except psycopg2.OperationalError as e:
            if time.monotonic() > deadline:
                raise SystemExit(f"Postgres did not answer within {wait_s:.0f} s: {e}") from e
            log.info("waiting for Postgres: %s", str(e).strip())
            time.sleep(2)
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
                log.info("created database %s", url.database)
    except errors.DuplicateDatabase:
        pass  # another replica created it first
    except psycopg2.Error as e:
        # A managed Postgres may not grant CREATEDB: then an administrator creates it once.
        log.warning("could not create database %s (%s); create it by hand", url.database, e)
    finally:
        conn.close()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    env = dict(os.environ)
    check_secrets(env)
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(env))
    ensure_database(env.get("MLFLOW_AUTH_DATABASE_URI") or DEFAULT_AUTH_DATABASE_URI)
    command = ["mlflow", "server", "--app-name", "basic-auth", *argv]
    log.info("exec %s", " ".join(command))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
