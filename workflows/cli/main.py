"""``workflows``: drive workflows from a shell, a script or CI through the JSON API, with a personal token.

    export WORKFLOWS_URL=http://127.0.0.1:8000/ WORKFLOWS_TOKEN=wft_...
    workflows list
    workflows start trip-planner --input '{"city": "Lisbon"}' --key trip-42 --follow
    workflows show 42 | follow 42 | cancel 42 | resume 42 --data '{"ok": true}' | send-event 42 approved
    workflows retry 42 | restart 42 --from weather
    workflows schedules list nightly-report | schedules pause 7 | schedules resume 7
    workflows ops

Exit status: 0 done (with ``--follow``: the run succeeded), 1 the run failed, 2 canceled, 3 suspended (it waits
for ``resume``), 4 the API refused (the message says why), 5 the server could not be reached, 64 a usage error.
``--json`` prints the API's answers (and, when following, one event per line) for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from . import operations, schedules
from .client import Client, CliError, Config

EXIT = {"succeeded": 0, "failed": 1, "canceled": 2, "suspended": 3}
API_REFUSED, UNREACHABLE, USAGE = 4, 5, 64


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2, which is "canceled" here
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(USAGE)


def _json_arg(text: str | None) -> Any:
    """``JSON`` or ``@file`` (``@-``: standard input)."""
    if text is None:
        return None
    if text.startswith("@"):
        source = sys.stdin if text == "@-" else None
        try:
            text = source.read() if source else Path(text[1:]).read_text()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def build_parser() -> Parser:
    common = Parser(add_help=False)
    # before or after the command; SUPPRESS: a subcommand's default must not undo what was given before it
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    common.add_argument("--url", default=argparse.SUPPRESS, help="the dashboard's URL (default: $WORKFLOWS_URL)")
    parser = Parser(prog="workflows", description="Drive workflows through the JSON API.", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def command(name: str, help: str, run: bool = True, follow: bool = False) -> Parser:
        p = sub.add_parser(name, help=help, parents=[common])
        if run:
            p.add_argument("run", type=int, help="the run's id")
        if follow:
            p.add_argument("--follow", "-f", action="store_true", help="stream the run until it ends")
            p.add_argument("--timeout", type=float, help="give up following after this many seconds")
        return p

    ls = command("list", "runs, newest first (or --workflows)", run=False)
    ls.add_argument("--workflows", action="store_true", help="list the workflows instead")
    ls.add_argument("--workflow", help="only this workflow's runs")
    ls.add_argument("--status", action="append", help="only runs with this status (repeatable)")
    ls.add_argument("--limit", type=int, default=20)
    start = command("start", "start a run", run=False, follow=True)
    start.add_argument("name", help="the workflow's name")
    start.add_argument("--input", type=_json_arg, help="the input: JSON or @file (@- for stdin)")
    start.add_argument("--key", help="an idempotency key: the same key returns the same run")
    command("show", "a run with its steps")
    command("follow", "stream a run's progress until it ends", follow=True).set_defaults(follow=True)
    command("cancel", "cancel a run")
    resume = command("resume", "resume a suspended step", follow=True)
    resume.add_argument("--step", help="the suspended step's path (omit when one step is suspended)")
    resume.add_argument("--data", type=_json_arg, help="resume data: JSON or @file")
    event = command("send-event", "send an event to a run's wait_for_event", follow=True)
    event.add_argument("name", help="the event's name")
    event.add_argument("--data", type=_json_arg, help="its data: JSON or @file")
    command("retry", "a failed or canceled run again, as a new run", follow=True)
    restart = command("restart", "a new run from a step, reusing the outputs before it", follow=True)
    restart.add_argument("--from", dest="from_step", required=True, help="the step to restart from")
    restart.add_argument("--input", type=_json_arg, help="a new input (default: the run's own)")
    schedules.add_parser(sub, common)
    command("ops", "workers, recovery loops, queues and pools (staff)", run=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.json, args.url = getattr(args, "json", False), getattr(args, "url", None)
    out = Console(highlight=False)
    try:
        client = Client(Config.load(url=args.url))
        return _run(args, client, out)
    except CliError as exc:
        print(f"workflows: {exc}", file=sys.stderr)
        if args.json and exc.body is not None:
            print(json.dumps(exc.body))
        return API_REFUSED if exc.status else UNREACHABLE
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, client: Client, out: Console) -> int:
    c = args.command
    if c == "list":
        if args.workflows:
            answer = client.get("workflows/")
            return _print(args, out, answer, _workflows_table)
        answer = client.get("runs/", workflow=args.workflow, status=args.status, limit=args.limit)
        return _print(args, out, answer, _runs_table)
    if c == "ops":
        return _print(args, out, client.get("operations/"), operations.tables)
    if c == "schedules":
        answer, table = schedules.run(args, client)
        return _print(args, out, answer, table)
    if c == "show":
        return _print(args, out, client.get(f"runs/{args.run}/"), _run_table)
    if c == "follow":
        return _follow(args, client, args.run)
    if c == "start":
        body = {"input": args.input} | ({"idempotency_key": args.key} if args.key else {})
        run = client.post(f"workflows/{args.name}/runs/", body)
    elif c == "cancel":
        run = client.post(f"runs/{args.run}/cancel/")
    elif c == "resume":
        run = client.post(f"runs/{args.run}/resume/", {"step": args.step, "data": args.data})
    elif c == "send-event":
        run = client.post(f"runs/{args.run}/send-event/", {"name": args.name, "data": args.data})
    elif c == "retry":
        run = client.post(f"runs/{args.run}/retry/")
    elif c == "restart":
        run = client.post(f"runs/{args.run}/restart/", {"from_step": args.from_step, "input": args.input})
    else:  # pragma: no cover: argparse knows the commands
        raise CliError(f"unknown command {c}")
    if getattr(args, "follow", False):
        if not args.json:
            out.print(f"run {run['id']} ({run['workflow']}): {client.url(run['urls']['page'])}")
        return _follow(args, client, run["id"])
    return _print(args, out, run, _run_table)


def _follow(args: argparse.Namespace, client: Client, run_id: int) -> int:
    from .follow import follow  # rich's live display and websockets only when following

    status = follow(client, run_id, as_json=args.json, timeout=args.timeout)
    run = client.get(f"runs/{run_id}/")
    if args.json:
        print(json.dumps(run))
    elif run.get("error"):
        print(f"error: {run['error']}", file=sys.stderr)
    return EXIT.get(run["status"], EXIT.get(status, 0))


def _print(args: argparse.Namespace, out: Console, answer: Any, table) -> int:
    if args.json:
        print(json.dumps(answer))
    else:
        out.print(table(answer))
    return 0


def _runs_table(page: dict[str, Any]) -> Table:
    t = Table(title=f"{page['count']}{'+' if page['count_capped'] else ''} runs")
    for col in ("id", "workflow", "status", "created", "duration", "key"):
        t.add_column(col)
    for r in page["runs"]:
        duration = f"{r['duration']:.1f}s" if r["duration"] is not None else ""
        t.add_row(str(r["id"]), r["workflow"], r["status"], r["created_at"][:19], duration, r["idempotency_key"] or "")
    return t


def _workflows_table(answer: dict[str, Any]) -> Table:
    t = Table(title="workflows")
    for col in ("name", "version", "runs 24h", "active", "description"):
        t.add_column(col)
    for w in answer["workflows"]:
        t.add_row(w["name"], w["version"], str(w["stats"].get("runs_24h", "")), str(w["stats"].get("active", "")),
                  (w["description"] or "").split("\n")[0][:60])  # fmt: skip
    return t


def _run_table(run: dict[str, Any]) -> Table:
    t = Table(title=f"run {run['id']} ({run['workflow']}): {run['status']}")
    for col in ("step", "status", "attempt", "error"):
        t.add_column(col)
    for s in run.get("steps", []):
        error = f"{s['error'].get('type', '')}: {s['error'].get('message', '')}" if isinstance(s["error"], dict) else ""
        t.add_row(s["path"], s["status"], str(s["attempt"]), error[:100])
    for s in run.get("suspended", []):
        t.add_row(s["path"], "suspended: resume with --data", "", "")
    return t


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
