from django.apps import AppConfig


class ClusterConfig(AppConfig):
    name = "tests.cluster"
    label = "cluster"
