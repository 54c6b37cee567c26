"""The package as an adopter gets it: the wheel built from this checkout, installed (not editable) into a new
virtualenv, in a project made by ``django-admin startproject`` and set up by README's "Add it to your project".

One virtualenv and one project serve every test here (module-scoped fixtures). Each step runs as a subprocess
with that virtualenv's Python, in the new project's directory, so nothing of this checkout is importable there.
Redis is the suite's own (REDIS_URL, which tests/settings.py exports), given through the environment as the README
allows. pip reaches PyPI (or whatever the machine's pip configuration names) for the dependencies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
DEMO = ("project", "examples", "tests", "bench")  # the checkout's own packages: never in a distribution

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        urlsplit(os.environ.get("DATABASE_URL", "")).scheme.startswith(("postgres", "pgsql")),
        reason="runs once per `make test`, in its SQLite pass: the adopting project has its own SQLite database, "
        "so the PostgreSQL pass would repeat it unchanged",
    ),
]


def tail(text: str | None, lines: int = 60) -> str:
    return "\n".join((text or "").splitlines()[-lines:])


def run(cmd: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    """Run ``cmd``; fail the test, with the tails of its output, unless it exits 0. Returns stdout + stderr."""
    cmd = [str(c) for c in cmd]
    print(f"$ {' '.join(cmd)}  (in {cwd})")
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"{' '.join(cmd)} still running after {timeout}s\n--- stdout ---\n{tail(out)}\n--- stderr ---\n"
                    f"{tail(err)}")  # fmt: skip
    output = f"{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited with {proc.returncode}\n--- stdout ---\n{tail(proc.stdout)}\n"
        f"--- stderr ---\n{tail(proc.stderr)}"
    )
    print(f"{tail(output, 15)}\n(exit 0 after {time.monotonic() - started:.1f}s)")
    return output


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what points at this checkout or its settings, plus ``extra``."""
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PYTEST_")}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel built from it (``python -m build``), both passing ``twine check``."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, BASE_DIR], cwd=BASE_DIR, env=clean_env(), timeout=600)
    (sdist,), (wheel,) = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel], cwd=out, env=clean_env())
    return {"sdist": sdist, "wheel": wheel}


def test_the_distributions_hold_the_app_and_nothing_of_the_demo(dists):
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
    top = {name.split("/")[0] for name in names}
    assert top == {"workflows", "django_live_workflows-0.1.0.dist-info"}, sorted(top)
    shipped = {
        path.relative_to(BASE_DIR).as_posix()
        for path in (BASE_DIR / "workflows").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    missing = shipped - names
    assert not missing, f"files of the app missing from the wheel: {sorted(missing)}"
    for needed in ("workflows/templates/workflows/base.html", "workflows/static/workflows/workflows.css",
                   "workflows/migrations/0001_initial.py", "workflows/migrations/__init__.py"):  # fmt: skip
        assert needed in names

    with tarfile.open(dists["sdist"]) as sdist:
        members = [m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name]
    assert {m.split("/")[0] for m in members} & set(DEMO) == set(), sorted(members)
    assert {"pyproject.toml", "README.md", "workflows/templates/workflows/base.html"} <= set(members)


README_ASGI = "from workflows.asgi import get_asgi_application"

SHOP_FLOWS = """
from pydantic import BaseModel

from workflows import StepContext, Workflow, step


class Order(BaseModel):
    id: int
    quantity: int


class Priced(BaseModel):
    id: int
    total: int


class Shipped(BaseModel):
    id: int
    total: int
    label: str


@step
def price(ctx: StepContext, data: Order) -> Priced:
    return Priced(id=data.id, total=data.quantity * 5)


@step(retries=1)
def ship(ctx: StepContext, data: Priced) -> Shipped:
    return Shipped(id=data.id, total=data.total, label=f"PKG-{data.id}")


order_flow = Workflow("order", input=Order, description="price, then ship").then(price).then(ship).commit()
"""

SHOP_TESTS = """
import pytest

from shop.flows import order_flow
from workflows.testing import drain


def test_an_order_ships(workflows):
    run = order_flow.start({"id": 42, "quantity": 2})
    workflows.drain()
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.output == {"id": 42, "total": 10, "label": "PKG-42"}


def test_another_order_ships_after_the_database_was_flushed(workflows):
    # the test before flushed every table, the workflow's row with them: nothing may remember it
    run = order_flow.start({"id": 7, "quantity": 1})
    workflows.drain()
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.output == {"id": 7, "total": 5, "label": "PKG-7"}
    assert run.step("ship").status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_drain_on_its_own_in_a_transaction_test():
    run = order_flow.start({"id": 3, "quantity": 4})
    drain(timeout=60)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.output == {"id": 3, "total": 20, "label": "PKG-3"}
"""

# Logs in with the test client and fetches the dashboard's pages; prints one JSON report for the test to judge.
CHECK_SITE = '''
import json
import os
import re
import traceback
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
import django

django.setup()

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.test import Client
from django.test.utils import setup_test_environment
from django.urls import Resolver404, resolve

import workflows
from shop.flows import order_flow
from workflows.routing import websocket_urlpatterns
from workflows.testing import drain

setup_test_environment()  # the test client's host, "testserver", is allowed
user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
run = order_flow.start({"id": 5, "quantity": 3}, user=user)
drain(timeout=60)
run.refresh_from_db()
report = {"workflows": workflows.__file__, "run": {"id": run.pk, "status": run.status, "output": run.output},
          "pages": {}, "static": {}, "links": {}}

static_url = settings.STATIC_URL
static_ref = re.compile(re.escape(static_url) + r"""[^"'\\s)<>?#]+""")
placeholder = re.compile(r"\\{\\w+\\}")
sockets = {"/" + str(route.pattern) for route in websocket_urlpatterns}  # README: the dashboard's prefix + ws/
link_attr = re.compile(r"""\\s(?:href|src|action|formaction|data-[\\w-]+)=["'](/(?!/)[^"']*)["']""")
client = Client()
client.force_login(user)
pages = ["/workflows/", "/workflows/workflows/order/", "/workflows/runs/", f"/workflows/runs/{run.pk}/",
         "/workflows/api/runs/", "/workflows/api/openapi.json"]
for url in pages:
    try:
        response = client.get(url)
    except Exception:
        report["pages"][url] = {"status": None, "error": traceback.format_exc()[-3000:]}
        continue
    body = response.content.decode(errors="replace")
    page = report["pages"][url] = {"status": response.status_code, "type": response.get("Content-Type", "")}
    if "json" in page["type"]:
        try:
            json.loads(body)
            page["json"] = True
        except ValueError as exc:
            page["json"] = str(exc)
    if response.status_code != 200:
        page["body"] = body[-2000:]
    for ref in static_ref.findall(body):
        report["static"].setdefault(ref, bool(finders.find(ref[len(static_url):])))
    for link in link_attr.findall(body):
        path = placeholder.sub("1", urlsplit(link).path)  # data-* URL templates: /runs/{id}/
        if path.startswith(static_url):
            continue
        if path in sockets:
            report["links"].setdefault(link, True)
            continue
        try:
            resolve(path)
            report["links"].setdefault(link, True)
        except Resolver404:
            report["links"][link] = f"no URL pattern matches (on {url})"
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def site(dists, tmp_path_factory) -> Iterator[dict]:
    """A new virtualenv with the wheel, pytest and pytest-django; in it, ``startproject mysite`` set up as the
    README says, with an app ``shop`` and its tests; checked and migrated."""
    root = tmp_path_factory.mktemp("adoption")
    env = clean_env(REDIS_URL=os.environ["REDIS_URL"])
    run([sys.executable, "-m", "venv", root / "venv"], cwd=root, env=env, timeout=300)
    bin_dir = root / "venv" / "bin"
    python = bin_dir / "python"
    run([python, "-m", "pip", "install", "--disable-pip-version-check", dists["wheel"], "pytest", "pytest-django"],
        cwd=root, env=env, timeout=900)  # fmt: skip
    run([bin_dir / "django-admin", "startproject", "mysite"], cwd=root, env=env)
    project = root / "mysite"

    # README step 2 (Redis: the REDIS_URL environment variable instead), the admin's login page as LOGIN_URL,
    # and the project's own app
    settings_py = project / "mysite" / "settings.py"
    settings_py.write_text(
        settings_py.read_text()
        + '\nINSTALLED_APPS += ["django_rq", "workflows"]\nLOGIN_URL = "admin:login"\nINSTALLED_APPS += ["shop"]\n'
    )
    # README step 3
    urls_py = project / "mysite" / "urls.py"
    urls_py.write_text(
        urls_py.read_text()
        + '\nfrom django.urls import include, path\n\nurlpatterns += [path("workflows/", include("workflows.urls"))]\n'
    )
    # README step 4: `application = get_asgi_application()` and its import replaced by the README's two lines
    asgi_py = project / "mysite" / "asgi.py"
    asgi = asgi_py.read_text()
    django_import = "from django.core.asgi import get_asgi_application\n"
    django_app = "application = get_asgi_application()\n"
    assert asgi.count(django_import) == 1 and asgi.count(django_app) == 1, f"startproject's asgi.py changed:\n{asgi}"
    asgi = asgi.replace(django_import, "").replace(django_app, f"{README_ASGI}\n\n{django_app}")
    asgi_py.write_text(asgi)

    (project / "shop").mkdir()
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "flows.py").write_text(SHOP_FLOWS.lstrip())
    (project / "conftest.py").write_text('pytest_plugins = ["workflows.testing"]\n')
    (project / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = mysite.settings\n")
    (project / "test_orders.py").write_text(SHOP_TESTS.lstrip())
    (project / "check_site.py").write_text(CHECK_SITE.lstrip())

    output = run([python, "manage.py", "check"], cwd=project, env=env)
    assert "System check identified" in output and "ERRORS:" not in output, output
    output = run([python, "manage.py", "migrate", "--no-input"], cwd=project, env=env)
    assert "Applying workflows.0001_initial... OK" in output, output
    yield {"root": root, "project": project, "python": python, "env": env}
    shutil.rmtree(root / "venv", ignore_errors=True)  # ~200 MB; pytest keeps the last runs' temporary directories


def test_the_projects_own_pytest_suite_runs_and_drains_workflows(site):
    output = run([site["python"], "-m", "pytest", "-v", "-p", "no:cacheprovider"], cwd=site["project"],
                 env=site["env"], timeout=300)  # fmt: skip
    assert "3 passed" in output, output


def test_the_asgi_application_routes_the_socket_under_the_dashboard_prefix(site):
    code = (
        "import mysite.asgi, workflows.routing; "
        "print(type(mysite.asgi.application).__name__, workflows.routing.websocket_urlpatterns[0].pattern)"
    )
    output = run([site["python"], "-c", code], cwd=site["project"], env=site["env"])
    assert "ProtocolTypeRouter workflows/ws/" in output, output


def test_the_dashboard_serves_its_pages_and_finds_its_static_files(site):
    output = run([site["python"], "check_site.py"], cwd=site["project"], env=site["env"], timeout=300)
    report = json.loads(output.split("REPORT ", 1)[1].splitlines()[0])
    print(json.dumps(report, indent=2))
    assert Path(report["workflows"]).is_relative_to(site["root"] / "venv"), "workflows not from the wheel"
    assert report["run"]["status"] == "succeeded", report["run"]
    assert report["run"]["output"] == {"id": 5, "total": 15, "label": "PKG-5"}

    pages = report["pages"]
    openapi = pages.pop("/workflows/api/openapi.json")
    assert openapi["status"] in (200, 404), openapi  # not required; when served, it is JSON
    assert openapi["status"] == 404 or openapi.get("json") is True, openapi
    failed = {url: page for url, page in pages.items() if page["status"] != 200}
    assert not failed, "pages that did not answer 200:\n" + "\n".join(
        f"--- {url}: {page['status']}\n{page.get('error') or page.get('body', '')}" for url, page in failed.items()
    )
    assert pages["/workflows/api/runs/"].get("json") is True, pages["/workflows/api/runs/"]

    assert report["static"], "the pages reference no static file"
    missing = [ref for ref, found in report["static"].items() if not found]
    assert not missing, f"static files the pages reference that staticfiles cannot find: {missing}"
    broken = {link: why for link, why in report["links"].items() if why is not True}
    assert not broken, f"links on the pages that lead nowhere in this project: {broken}"
