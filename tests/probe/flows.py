from tests.testapp.eager_flows import worker_modules  # noqa: F401  (registered: the step reports sys.modules)
