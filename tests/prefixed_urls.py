"""A project that mounts the dashboard under a prefix and has nothing else: no login/logout pages, no admin, no
django-rq dashboard (what ``django-admin startproject`` plus one ``include`` gives). Used by tests/unit/test_prefix.py.
"""

from django.urls import include, path

urlpatterns = [path("wf/", include("workflows.urls"))]
