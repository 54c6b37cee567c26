"""The honest bench's own arithmetic: interleaving, per-repetition ratios, CPU accounting over process trees.
Nothing here asserts a time: CPU is checked to be counted and attributed to the right group, not how much."""

import subprocess
import sys

from bench import cpu, table
from bench.compare import rotated

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
# waits for a line, runs a child that burns CPU and reaps it, says "done", then waits to be told to exit
PARENT = f"import subprocess, sys\nsys.stdin.readline()\nsubprocess.run([sys.executable, '-c', {BURN!r}])\n"
PARENT += "print('done', flush=True)\nsys.stdin.readline()"


def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_rotated__each_repetition_is_a_permutation_and_each_variant_leads_once():
    variants = ["step", "eager", "raw1", "raw5"]
    orders = [rotated(variants, rep) for rep in range(len(variants))]
    assert all(sorted(order) == sorted(variants) for order in orders)
    assert [order[0] for order in orders] == variants
    assert rotated(variants, len(variants)) == variants


def test_ratios__are_taken_within_each_repetition():
    # a machine twice as busy in the second repetition slows both sides: the paired ratio does not move
    assert table.ratios([10, 40], [20, 80]) == [0.5, 0.5]
    assert table.ratios([10], [0]) == []


def test_meter__counts_a_child_that_burned_cpu_and_was_reaped_within_the_measure():
    busy, idle = _python(PARENT), _python("import sys\nsys.stdin.readline()")
    try:
        meter = cpu.Meter({"busy": [busy.pid], "idle": [idle.pid], "driver": cpu.own_seconds})
        with meter:
            busy.stdin.write("go\n")
            busy.stdin.flush()
            assert busy.stdout.readline().strip() == "done"  # its child has ended and was reaped
        assert meter.used["busy"] > 0  # the child's CPU, through its parent's cutime/cstime
        assert meter.used["busy"] > meter.used["idle"]
        assert meter.total == sum(meter.used.values())
    finally:
        for p in (busy, idle):
            p.stdin.close()
            p.wait(30)


def test_family__includes_living_descendants():
    parent = _python(
        "import subprocess, sys\nchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\nsys.stdin.readline()\nchild.kill()\nchild.wait()"
    )
    try:
        child = int(parent.stdout.readline())
        assert set(cpu.family([parent.pid])) >= {parent.pid, child}
        assert cpu.rss_mb(child) > 0
    finally:
        parent.stdin.close()
        parent.wait(30)


def test_table__shows_missing_figures_as_such_and_ratios_per_repetition():
    v = {"step": {"per_s": [10, 40], "cpu_ms": [20, 20]}, "raw1": {"per_s": [20, 80], "cpu_ms": [5, 10]}}
    for k in ("eager", "raw5", "db"):
        v[k] = {"per_s": [1, 1], "cpu_ms": [1, 1]}
    part = {"runs": 100, "workers": 2, "classes": {"SimpleWorker": v}}
    results = {"dbs": ["sqlite"], "db": {"sqlite": {"compare": part}}, "params": {"reps": 2}}
    text = table.markdown(results)
    assert "| **SimpleWorker**: one job per step ÷ raw RQ one job per no-op" in text
    assert "0.50× (0.50–0.50); CPU 3.0× (2.0–4.0)" in text  # medians of the paired ratios
    assert "| **forking Worker**" not in text  # a class that was not run has no rows
    assert "n/a: KeyError: 'handoff'" in text  # never invented
