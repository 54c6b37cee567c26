"""The multi-host test (``make cluster-test``; the small version: ``test_cluster.py``). ``__main__`` makes the
network namespaces (``netns``) and runs ``scenarios`` inside them; ``services`` starts PostgreSQL, Redis and the
app hosts' processes; ``harness`` reads what the steps recorded (``flows``). Also a Django app (its workflows),
installed by ``settings`` only: the rest of the suite never loads it."""
