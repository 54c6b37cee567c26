"""The test settings with the dashboard alone under a prefix (tests/prefixed_urls.py), for the e2e tests' daphne."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.prefixed_urls"
