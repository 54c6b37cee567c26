"""Settings read from the environment, with safe embedded defaults for one machine.

DATABASE_URL   default: SQLite in var/db.sqlite3 (WAL, IMMEDIATE transactions, busy timeout)
REDIS_URL      default: the embedded Redis that `manage.py up` starts on var/redis/redis.sock
SECRET_KEY     default: a random key generated once into var/secret_key
DEBUG          default: off
ALLOWED_HOSTS  default: 127.0.0.1,localhost
LOGIN_FAILURE_LIMIT, LOGIN_COOLOFF_MINUTES  default: 5, 15: failed logins per username and per address that
               pause logging in there, and for how long (django-axes)
HTTPS          default: off; on: the site is served over HTTPS (behind a proxy that sets X-Forwarded-Proto):
               secure cookies, HSTS, redirects to https, so that `manage.py check --deploy` is clean
EMAIL_HOST     default: unset, and then no mail is sent and /accounts/password_reset/ does not exist;
               set (with EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, DEFAULT_FROM_EMAIL)
               or EMAIL_BACKEND: password reset by mail is offered
WORKFLOWS_LOG_JSON     default: off; on: log lines are JSON objects (with run_id, step, attempt)
WORKFLOWS_METRICS      default: off; on: Prometheus metrics at /metrics (staff, or WORKFLOWS_METRICS_TOKEN)
"""

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

import workflows.logging

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("WORKFLOWS_VAR_DIR", BASE_DIR / "var"))


def _env_flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)  # its database, key and Redis socket: ours only
        tmp = path.with_suffix(f".{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # readable by its owner only
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)  # atomic: the first process to create it wins
        except FileExistsError:
            pass
        tmp.unlink()
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = _env_flag("DEBUG")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

if _env_flag("HTTPS"):  # one switch for a site served over HTTPS (SECURITY.md: what a production site must set)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_flag("HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_flag("HSTS_PRELOAD", True)

# daphne's app only replaces `runserver` with its ASGI one; installed for that command alone, since importing it
# loads twisted (tens of MB) into every process, workers included. `manage.py up` and production run daphne itself.
# Worker processes (and the recovery loop) serve no pages: they leave out ninja's app too (its static files and
# templates are for the API docs page; importing it loads django.test, unittest and more: ~4 MB per worker).
WORKER_PROCESS = sys.argv[1:2] in (["workflows_worker"], ["workflows_recover"], ["rqworker"])
# Ours (which run only the app's system checks, not the URLs') leave out the admin and axes (login throttling) apps
# too: ~1.4 MB and 37 modules per worker (python -m bench.worker_imports). django-rq's runs every check: it keeps them.
LEAN_WORKER = sys.argv[1:2] in (["workflows_worker"], ["workflows_recover"])
INSTALLED_APPS = [
    *(["daphne"] if sys.argv[1:2] == ["runserver"] else []),
    # the admin without its autodiscovery at start-up: project/urls.py registers the apps' admin modules, so that
    # worker processes, which load no URLs, import none of them (nor the views and libraries those import)
    *([] if LEAN_WORKER else ["django.contrib.admin.apps.SimpleAdminConfig"]),
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_rq",
    *([] if WORKER_PROCESS else ["ninja"]),  # the API docs page serves its Swagger UI from ninja's static files
    *([] if LEAN_WORKER else ["axes"]),
    "workflows",
    "examples",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "project.csp.ContentSecurityPolicyMiddleware",  # scripts from the site only (project/csp.py)
    "axes.middleware.AxesMiddleware",  # last: answers a refused login (below)
]

ROOT_URLCONF = "project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side parameters let psycopg prepare a statement it has run 5 times; the hot path's SQL is built once
    # (workflows.statements), so PostgreSQL parses and plans a transition's statements once per connection. On the
    # throughput benchmark this took PostgreSQL from ~120 to ~210 steps/s. Behind PgBouncer in transaction mode
    # (before 1.21), also set "prepare_threshold": None.
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": 5,  # Django's default (None) never prepares
        **DATABASES["default"].get("OPTIONS", {}),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "workflows.sqlite"  # opt-in: writers queue on a file lock (its docstring)
    # Several worker processes write at once: WAL lets readers proceed, IMMEDIATE takes the write lock at
    # BEGIN so a transaction never fails half-way on a lock upgrade, and the timeout makes writers queue.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", f"unix://{VAR_DIR / 'redis' / 'redis.sock'}")

# RQ_QUEUES and CHANNEL_LAYERS are derived from REDIS_URL by the app (README: "Add it to your project").
WORKFLOWS = {
    "REDIS_URL": REDIS_URL,
    "POOLS": {"default": {"queue": "default", "max_parallel": 10}, "llm": {"queue": "default", "max_parallel": 2}},
    "WORKER_CLASS": os.environ.get("WORKFLOWS_WORKER_CLASS", "rq.worker.Worker"),
    "METRICS": _env_flag("WORKFLOWS_METRICS"),  # Prometheus at /metrics: a staff session or this bearer token
    "METRICS_TOKEN": os.environ.get("WORKFLOWS_METRICS_TOKEN") or None,
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Login throttling (django-axes): LOGIN_FAILURE_LIMIT failed logins for one username, and separately from one client
# address, pause logging in there for LOGIN_COOLOFF_MINUTES (each failure meanwhile starts the wait again); a
# success resets the count. The address is REMOTE_ADDR: behind a proxy, run daphne with --proxy-headers.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # failures only: no row per successful login
AXES_LOCKOUT_CALLABLE = "project.lockout.locked_out"  # a 429 page with Retry-After

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the demo site's own (empty); the dashboard's ship in the app
STATIC_ROOT = VAR_DIR / "static"
WHITENOISE_USE_FINDERS = True  # serve app and project static files without a collectstatic step
WHITENOISE_ALLOW_ALL_ORIGINS = False  # no "Access-Control-Allow-Origin: *": the pages load them from this site

# Mail only when configured: otherwise Django would try SMTP on localhost:25. PASSWORD_RESET (project/urls.py)
# offers the password reset pages only when a message can actually be sent.
if os.environ.get("EMAIL_BACKEND"):
    EMAIL_BACKEND = os.environ["EMAIL_BACKEND"]
if os.environ.get("EMAIL_HOST"):
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = _env_flag("EMAIL_USE_TLS", True)
    DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "workflows@localhost")
PASSWORD_RESET = bool(os.environ.get("EMAIL_BACKEND") or os.environ.get("EMAIL_HOST"))

# Every line of the engine, the workers and step code says its run, step and attempt; JSON: WORKFLOWS_LOG_JSON=1
LOGGING = workflows.logging.config()
