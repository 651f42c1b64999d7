"""``tinywindow feed serve``: replay any source over gRPC."""

from __future__ import annotations

import argparse
from typing import Any

from tinywindow.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser("feed", help="the gRPC market-data feed")
    cmds = p.add_subparsers(dest="feed_command", metavar="ACTION")
    cmds.required = True
    serve = cmds.add_parser("serve", help="replay a source as a gRPC bar stream")
    serve.add_argument("--source", required=True, help="configured source name or bundled dataset")
    serve.add_argument("--host", help="bind address (default: feed.host, loopback)")
    serve.add_argument("--port", type=int, help="port (default: feed.port; 0 picks a free one)")
    serve.add_argument(
        "--speed", type=float, help="market seconds per wall second; 0 = as fast as clients read"
    )
    serve.add_argument(
        "--batch-rows", type=int, help="most bars per Arrow IPC batch message (default: feed.batch_rows)"
    )
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace, cfg: Config) -> int:
    from tinywindow.cli.data import resolve_source
    from tinywindow.data.feed.server import FeedServer
    from tinywindow.data.sources import build_source

    source = build_source(resolve_source(cfg, args.source), cfg.data.on_bad_rows)
    server = FeedServer(
        source,
        host=args.host or cfg.feed.host,
        port=cfg.feed.port if args.port is None else args.port,
        speed=cfg.feed.speed if args.speed is None else args.speed,
        batch_rows=args.batch_rows or cfg.feed.batch_rows,
    ).start()
    print(f"feed: {server.feed.table.num_rows} bars of {args.source!r} on {server.address}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0
