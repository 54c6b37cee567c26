"""An app for worker processes on the demo project's settings (``tests.demo_worker_settings``): it registers the
one workflow that reports what a worker imported (``tests.testapp.eager_flows.worker_modules``) and nothing else."""
