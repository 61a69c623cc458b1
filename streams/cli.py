"""The ``imgstream`` command: stack, worker, upload, show, images, batch, retry, samples,
demo, migrate, emulator, replay, tail."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from imaging.errors import ConfigurationError, ImgstreamError
from streams.settings import get_settings

# Piped output is not cut at 80 columns (ids and URLs stay whole for grep and scripts).
console = Console(width=None if sys.stdout.isatty() else 160)


def _stack_command(args: argparse.Namespace) -> int:
    from infra.stack import Stack

    stack = Stack(get_settings())
    if args.action == "up":
        import time

        started = time.monotonic()
        stack.up(echo=console.print)
        console.print(f"[green]stack up[/] in {time.monotonic() - started:.1f}s; "
                      f"logs in {stack.logs_dir}")
    elif args.action == "down":
        stack.down(echo=console.print)
    table = Table("part", "state", "endpoint", "pid")
    for part in stack.status():
        colour = "green" if part.state in ("running", "external") else "red"
        table.add_row(part.name, f"[{colour}]{part.state}[/]", part.endpoint,
                      str(part.pid or ""))
    console.print(table)
    return 0


def _worker_command(args: argparse.Namespace) -> int:
    """Replace this process with a faust worker of ``streams.app``."""
    settings = get_settings()
    if args.check:
        from streams.preflight import check_worker

        return check_worker(settings)
    if args.web_port:
        os.environ["IMGSTREAM_WEB_PORT"] = str(args.web_port)
    port = str(args.web_port or settings.web_port)
    argv = [sys.executable, "-m", "streams.app", "worker",
            "-l", args.loglevel, "--web-port", port, "--web-host", settings.web_host]
    os.execv(sys.executable, argv)
    return 0  # not reached


def _retry_command(args: argparse.Namespace) -> int:
    """POST /api/images/{id}/retry for each id (exit 1 if any was refused), or
    /api/images/retry-stranded with --stranded."""
    import json
    import urllib.error
    import urllib.request

    from streams.auth import admin_headers

    settings = get_settings()
    api = args.api or f"http://{settings.web_host}:{settings.web_port}"
    headers = {"X-API-Key": args.api_key} if args.api_key else admin_headers(settings)
    if args.stranded == (bool(args.image_ids)):
        print("name image ids, or --stranded (not both)")
        return 2
    if args.stranded:
        request = urllib.request.Request(
            f"{api}/api/images/retry-stranded?older_than={args.older_than:g}", data=b"",
            headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            print(f"{exc.code} {body.get('error')}: {body.get('reason')}")
            return 1
        except OSError as exc:
            print(f"the API at {api} cannot be reached: {exc}")
            return 1
        for image_id in body["redriven"]:
            print(f"{image_id}: uploaded (driven again)")
        print(f"{body['count']} stranded photos driven again")
        return 0
    refused = 0
    for image_id in args.image_ids:
        request = urllib.request.Request(f"{api}/api/images/{image_id}/retry", data=b"",
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                print(f"{image_id}: {json.load(response)['status']} (driven again)")
        except urllib.error.HTTPError as exc:
            refused += 1
            body = json.loads(exc.read() or b"{}")
            print(f"{image_id}: {exc.code} {body.get('error')}: {body.get('reason')}")
        except OSError as exc:
            refused += 1
            print(f"{image_id}: the API at {api} cannot be reached: {exc}")
    return 1 if refused else 0


def _upload_command(args: argparse.Namespace) -> int:
    """Upload files; print each file's image id (or why it has none); with --wait follow
    the photos to the end and print tier before -> after, cost and URL per photo."""
    import json

    from streams.api_client import default_api, default_key
    from streams.bulk_upload import collect_files, run_bulk_upload, summary_document

    settings = get_settings()
    api = args.api or default_api(settings)
    key = args.api_key or os.environ.get("IMGSTREAM_API_KEY")
    # With --json, stdout carries one JSON document: progress bars go to stderr.
    shown = Console(stderr=True) if args.json else console
    files, skipped = collect_files([Path(p) for p in args.paths])
    if not files:
        for s in skipped:
            shown.print(f"skipped {s.path}: {s.reason}", soft_wrap=True, markup=False)
        message = f"no supported image files in {' '.join(args.paths)}"
        if not args.json:
            console.print(f"[red]{message}[/] (supported: .jpg .jpeg .png .webp)")
        else:
            print(json.dumps({"error": "no_files", "message": message,
                              "skipped": [{"file": str(s.path), "reason": s.reason}
                                          for s in skipped]}))
        return 2
    summary = asyncio.run(run_bulk_upload(
        paths=[Path(p) for p in args.paths], api=api, seller_id=args.seller, sku_id=args.sku,
        product_group_id=args.group, api_key=key, concurrency=args.concurrency,
        console=shown, show_table=not args.json,
    ))
    code = 0 if summary.failed == 0 and summary.rejected == 0 else 1
    document = summary_document(summary)
    if args.wait:
        code = max(code, _follow_uploads(summary, document, args, api,
                                         default_key(settings, args.api_key), shown))
    if args.json:
        print(json.dumps(document, indent=2))
    return code


def _follow_uploads(summary, document: dict, args: argparse.Namespace, api: str,
                    key: str | None, shown: Console) -> int:
    from streams.api_client import ApiClient
    from streams.cli_views import completion, print_completions
    from streams.follow import follow

    accepted = [r for r in summary.results if r.body.get("image_id")
                and r.outcome in ("created", "duplicate")]
    if not accepted:
        return 0
    last, unfinished = follow(ApiClient(api, key), [r.body["image_id"] for r in accepted],
                              shown, timeout=args.timeout)
    rows = [(r.path.name, completion(last.get(r.body["image_id"]) or
                                     {"image_id": r.body["image_id"], "status": None}))
            for r in accepted]
    by_id = {row["image_id"]: row for _, row in rows}
    for entry in document["files"]:
        if entry["image_id"] in by_id:
            entry["result"] = by_id[entry["image_id"]]
    document["unfinished"] = unfinished
    if not args.json:
        print_completions(rows, console)
        if unfinished:
            console.print(f"[red]{len(unfinished)} photos not finished after "
                          f"{args.timeout:.0f}s[/]: {' '.join(unfinished)}", soft_wrap=True)
    failed = any(row["status"] == "failed" for _, row in rows)
    return 1 if unfinished or failed else 0


def _client(args: argparse.Namespace):
    from streams.api_client import ApiClient, default_api, default_key

    settings = get_settings()
    return ApiClient(args.api or default_api(settings), default_key(settings, args.api_key))


def _print_json(document) -> None:
    import json

    print(json.dumps(document, indent=2))


def _show_command(args: argparse.Namespace) -> int:
    from streams.cli_views import print_detail

    doc = _client(args).get(f"/api/images/{args.image_id}")
    _print_json(doc) if args.json else print_detail(doc, console)
    return 0


def _images_command(args: argparse.Namespace) -> int:
    from streams.cli_views import print_images

    page = _client(args).get("/api/images", seller_id=args.seller, sku_id=args.sku,
                             tier=args.tier, status=args.status, since=args.since,
                             limit=args.limit, cursor=args.cursor)
    _print_json(page) if args.json else print_images(page, console)
    return 0


def _batch_command(args: argparse.Namespace) -> int:
    import time

    from streams.cli_views import batch_line, print_batch_results

    client = _client(args)
    if args.action == "enhance":
        if bool(args.ids) == bool(args.seller or args.sku or args.since or args.until):
            console.print("[red]give image ids, or a filter (--seller, --sku, --since, "
                          "--until), not both[/]")
            return 2
        body: dict = ({"image_ids": args.ids} if args.ids else
                      {"filter": {k: v for k, v in (("seller_id", args.seller),
                                                    ("sku_id", args.sku),
                                                    ("since", args.since),
                                                    ("until", args.until)) if v}})
        if args.profile:
            body["profile"] = args.profile
        started = client.post("/api/batch/enhance", body)
        batch_id = started["batch_id"]
        if args.json and not args.wait:
            _print_json(started)
            return 0
        console.print(f"batch {batch_id}: {started.get('total')} photos queued",
                      soft_wrap=True, highlight=False)
    else:
        if len(args.ids) != 1:
            console.print(f"[red]batch {args.action} needs one batch id[/]")
            return 2
        batch_id = args.ids[0]
    if args.action == "cancel":
        status = client.post(f"/api/batch/{batch_id}/cancel")
    elif args.action == "results":
        page = client.get(f"/api/batch/{batch_id}/results", cursor=args.cursor,
                          limit=args.limit)
        _print_json(page) if args.json else print_batch_results(page, console)
        return 0
    else:
        status = client.get(f"/api/batch/{batch_id}/status")
        while args.wait and status.get("state") == "running":
            if not args.json:
                console.print(batch_line(status), soft_wrap=True, highlight=False)
            time.sleep(2)
            status = client.get(f"/api/batch/{batch_id}/status")
    _print_json(status) if args.json else console.print(batch_line(status), soft_wrap=True,
                                                         highlight=False)
    return 1 if (status.get("counts") or {}).get("failed") else 0


def _samples_command(args: argparse.Namespace) -> int:
    from imaging.samples import generate_sample_batch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for sample in generate_sample_batch(seed=args.seed, count=args.count):
        (out / sample.name).write_bytes(sample.data)
        console.print(f"{sample.name:40s} {sample.description}")
    return 0


def _migrate_command(args: argparse.Namespace) -> int:
    from services.database import Database, apply_migrations

    async def run() -> list[str]:
        db = await Database.connect(get_settings())
        try:
            return await apply_migrations(db)
        finally:
            await db.close()

    applied = asyncio.run(run())
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(console, sample_count=args.count, keep_serving=not args.no_wait)


def _emulator_command(args: argparse.Namespace) -> int:
    """Serve the Bedrock runtime emulator in the foreground (faults from the settings)."""
    from infra.bedrock_emulator import bind_address, run_emulator

    settings = get_settings()
    host, port = bind_address(settings)
    run_emulator(settings, host=args.host or host, port=args.port or port)
    return 0


def _tail_command(args: argparse.Namespace) -> int:
    from streams.tail import TailOptions, run_tail

    return run_tail(get_settings(), TailOptions(
        event=args.event, tier=args.tier, seller=args.seller,
        from_beginning=args.from_beginning, group=args.group, max_events=args.max,
        as_json=args.json))


def _replay_command(args: argparse.Namespace) -> int:
    from streams.replay import ReplayOptions, run_replay

    return run_replay(get_settings(), ReplayOptions(
        profile=args.profile, from_time=args.from_time, to_time=args.to_time,
        offsets=tuple(args.offsets), sellers=tuple(args.seller), skus=tuple(args.sku),
        group=args.group, dry_run=args.dry_run, as_json=args.json, per_image=args.per_image,
        api=args.api, wait=args.wait, wait_timeout=args.wait_timeout, rate=args.rate),
        console)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="embedded dev stack: up, down or status")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=_stack_command)

    p = sub.add_parser("worker", help="run a faust worker (agents + HTTP API)")
    p.add_argument("--web-port", type=int, default=None)
    p.add_argument("-l", "--loglevel", default="info")
    p.add_argument("--check", action="store_true",
                   help="check settings, profile, catalog, model and agents; connect "
                        "nowhere; exit 0 if a worker could start")
    p.set_defaults(func=_worker_command)

    p = sub.add_parser("upload", help="upload photos through the HTTP API, concurrently")
    p.add_argument("paths", nargs="+", help="files or folders (searched for images)")
    p.add_argument("--seller", required=True,
                   help="seller id as the catalogue has it (up to 128 characters)")
    p.add_argument("--sku", default=None, help="SKU id for every file (default: file stem)")
    p.add_argument("--group", default=None, help="product group id")
    p.add_argument("--api", default=None, help="API base URL (default: the worker's)")
    p.add_argument("--api-key", default=None, help="API key (or IMGSTREAM_API_KEY)")
    p.add_argument("-c", "--concurrency", type=int, default=8)
    p.add_argument("--json", action="store_true", help="print one JSON document (files, "
                                                      "image ids, skipped; results with --wait)")
    p.add_argument("--wait", action="store_true", help="follow the photos until each is "
                   "completed, skipped or failed; print tier before -> after, cost and URL")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long --wait waits (default 600)")
    p.set_defaults(func=_upload_command)

    def api_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--api", default=None, help="API base URL (default: the worker's)")
        p.add_argument("--api-key", default=None, help="API key (default: IMGSTREAM_API_KEY, "
                                                         "else this machine's admin key)")
        p.add_argument("--json", action="store_true", help="print the API's JSON document")

    p = sub.add_parser("show", help="one photo: quality before/after, steps, cost, URLs")
    p.add_argument("image_id")
    api_options(p)
    p.set_defaults(func=_show_command)

    p = sub.add_parser("images", help="list photos, newest first")
    p.add_argument("--seller", default=None)
    p.add_argument("--sku", default=None)
    p.add_argument("--tier", choices=["excellent", "good", "fair", "poor"], default=None)
    p.add_argument("--status", default=None, help="uploaded, analyzed, completed, skipped, "
                                                 "failed...")
    p.add_argument("--since", default=None, metavar="ISO_TIME")
    p.add_argument("--limit", type=int, default=50, help="1-200 (default 50)")
    p.add_argument("--cursor", default=None, help="the next page (printed after a page)")
    api_options(p)
    p.set_defaults(func=_images_command)

    p = sub.add_parser("batch", help="enhance many photos again (admin): enhance, status, "
                                     "results, cancel")
    p.add_argument("action", choices=["enhance", "status", "results", "cancel"])
    p.add_argument("ids", nargs="*", help="enhance: image ids; others: the batch id")
    p.add_argument("--seller", default=None, help="enhance: every photo of this seller")
    p.add_argument("--sku", default=None)
    p.add_argument("--since", default=None, metavar="ISO_TIME")
    p.add_argument("--until", default=None, metavar="ISO_TIME")
    p.add_argument("--profile", default=None, help="enhance under this profile")
    p.add_argument("--wait", action="store_true", help="enhance/status: until it is done")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--cursor", default=None)
    api_options(p)
    p.set_defaults(func=_batch_command)

    p = sub.add_parser("retry", help="drive failed (or, with --stranded, unfinished and "
                                     "stuck) photos through the pipeline again")
    p.add_argument("image_ids", nargs="*")
    p.add_argument("--stranded", action="store_true",
                   help="every unfinished photo whose status has not changed for "
                        "--older-than seconds (their events were lost)")
    p.add_argument("--older-than", type=float, default=600.0, metavar="SECONDS")
    p.add_argument("--api", default=None, help="API base URL (default: the worker's)")
    p.add_argument("--api-key", default=None, help="an admin key (default: the first of "
                                                     "IMGSTREAM_ADMIN_KEYS)")
    p.set_defaults(func=_retry_command)

    p = sub.add_parser("samples", help="write the generated sample photos to a folder")
    p.add_argument("--out", default="samples")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--count", type=int, default=12)
    p.set_defaults(func=_samples_command)

    p = sub.add_parser("migrate", help="apply pending SQL migrations")
    p.set_defaults(func=_migrate_command)

    p = sub.add_parser("demo", help="stack up, start a worker, upload the sample batch")
    p.add_argument("--count", type=int, default=12)
    p.add_argument("--no-wait", action="store_true", help="exit after the batch")
    p.set_defaults(func=_demo_command)

    p = sub.add_parser("emulator", help="run a local emulator of an AWS service")
    p.add_argument("service", choices=["bedrock"], help="bedrock: Bedrock runtime InvokeModel")
    p.add_argument("--host", default=None, help="bind address (default: bedrock_endpoint's host)")
    p.add_argument("--port", type=int, default=None, help="default: bedrock_endpoint's port")
    p.set_defaults(func=_emulator_command)

    p = sub.add_parser("tail", help="print the public quality events, validated (a consumer "
                                    "example for downstream teams)")
    p.add_argument("event", choices=["assessed", "completed"],
                   help="images.assessed (QualityAssessed) or images.completed (ImageCompleted)")
    p.add_argument("--tier", choices=["excellent", "good", "poor"],
                   help="only this tier (completed: the published tier, after enhancement)")
    p.add_argument("--seller", default=None,
                   help="only this seller (its catalogue id or its event key)")
    p.add_argument("--from-beginning", action="store_true",
                   help="start at the oldest retained event (when the group has no offset)")
    p.add_argument("--group", default=None,
                   help="consumer group (default: a new imgstream-tail-<random>, no commits)")
    p.add_argument("--max", type=int, default=None, help="exit after printing N events")
    p.add_argument("--json", action="store_true", help="print each event as one JSON line")
    p.set_defaults(func=_tail_command)

    p = sub.add_parser("replay", help="reprocess images.uploaded under another profile "
                                      "(--dry-run: what would change, paying nothing)")
    p.add_argument("--profile", required=True, help="profile name (profiles/ or "
                                                    "IMGSTREAM_PROFILES_DIR)")
    p.add_argument("--from", dest="from_time", metavar="ISO_TIME",
                   help="first upload time (inclusive; no zone = UTC)")
    p.add_argument("--to", dest="to_time", metavar="ISO_TIME",
                   help="end upload time (exclusive; default: the end of the topic now)")
    p.add_argument("--offsets", nargs="+", action="extend", default=[],
                   metavar="P:START-END", help="offset ranges instead of times "
                                               "(END exclusive, empty = the end)")
    p.add_argument("--seller", action="append", default=[], help="only this seller "
                                                                 "(repeatable)")
    p.add_argument("--sku", action="append", default=[], help="only this SKU (repeatable)")
    p.add_argument("--group", default=None, help="consumer group (default: "
                                                 "<app id>-replay-<profile>-<version>)")
    p.add_argument("--dry-run", action="store_true",
                   help="assess and route in-process, compare, write nothing")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--per-image", action="store_true", help="dry run: one entry per photo")
    p.add_argument("--api", default=None, help="a worker's URL, for the budget "
                                              "(default: this machine's worker)")
    p.add_argument("--wait", action="store_true",
                   help="wait until every requested job is completed, show tier moves")
    p.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS")
    p.add_argument("--rate", type=float, default=None,
                   help="at most this many requests per second (default: no limit)")
    p.set_defaults(func=_replay_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigurationError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        return 2
    except ImgstreamError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
