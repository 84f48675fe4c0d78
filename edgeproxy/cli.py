"""``edgeproxy serve|demo-origin|validate|invoke|events|invalidate``: the only place that
exits."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from edgeproxy.config.loading import LoadedConfig, load_config
from edgeproxy.config.overrides import ConfigOverrides
from edgeproxy.config.sources import SourceOptions
from edgeproxy.errors import ConfigError, HandlerLoadError
from edgeproxy.functions import invoke
from edgeproxy.functions.cloudfront import testing

DEFAULT_CONFIG = Path("config/distribution.yaml")

# What `edgeproxy --help` tells a user (the commands' own lines come from their parsers).
ABOUT = """\
edgeproxy runs a CloudFront edge location on your machine: an HTTP and HTTPS reverse proxy
that serves a distribution described in YAML (default: config/distribution.yaml) with
CloudFront's behaviors, cache rules and headers, and runs your Lambda@Edge handlers (Python
files, unchanged) at the four stages: viewer-request, origin-request, origin-response and
viewer-response."""

WHERE_NEXT = """\
Start with `edgeproxy serve`: the demo distribution on http://127.0.0.1:8080 and its demo
origin on 127.0.0.1:8081. `edgeproxy COMMAND --help` lists a command's options.

Documentation: README.md (a five-minute tour) and docs/ in the edgeproxy source tree:
configuration.md, handlers.md, caching.md, https-and-geo.md, fidelity.md (what differs
from CloudFront), reliability.md, performance.md."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        return int(args.run(args))
    except ConfigError as err:
        print(
            f"edgeproxy: the config cannot be served ({len(err.problems)} problem(s)):",
            file=sys.stderr,
        )
        for path, message in err.problems:
            print(f"  {path}: {message}", file=sys.stderr)
        return 2
    except HandlerLoadError as err:
        print(f"edgeproxy: handler cannot be loaded: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C or SIGTERM: a clean stop
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeproxy",
        description=ABOUT,
        epilog=WHERE_NEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve a distribution on localhost")
    _config_args(serve)
    serve.add_argument("--host", help="listen address (default: edge.listeners.host)")
    serve.add_argument("--port", type=int, help="HTTP port (default: edge.listeners.http_port)")
    serve.add_argument(
        "--https-port",
        type=int,
        help="HTTPS port (default: edge.listeners.https_port; 0: the config decides)",
    )
    serve.add_argument("--origin", metavar="URL", help="send the demo origin's traffic to URL")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (default 1)"
    )
    serve.set_defaults(run=_serve)

    cert = sub.add_parser("cert", help="make or show the local CA and how to trust it")
    _config_args(cert)
    cert.set_defaults(run=_cert)

    validate = sub.add_parser("validate", help="check a config and its handlers, then exit")
    _config_args(validate)
    validate.set_defaults(run=_validate)

    demo = sub.add_parser("demo-origin", help="run the built-in demo origin alone")
    demo.add_argument("--root", type=Path, default=Path("config/demo-site"))
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8081)
    demo.set_defaults(run=_demo_origin)

    imp = sub.add_parser(
        "import", help="write a Terraform / AWS API / CloudFormation source as our YAML"
    )
    imp.add_argument("source", type=Path, metavar="FILE", help="a source as --config takes")
    imp.add_argument("--out", type=Path, help="the YAML file to write (default: print it)")
    _source_args(imp)
    imp.set_defaults(run=_import)

    invoke.register(sub)  # invoke, events generate
    testing.register(sub)  # test-function (CloudFront Functions)

    inv = sub.add_parser("invalidate", help="invalidate cached paths ('/img/*', '/a.html')")
    inv.add_argument("paths", nargs="+")
    inv.add_argument("--admin", default="http://127.0.0.1:9901", help="admin API URL")
    inv.add_argument(
        "--token",
        default=os.environ.get("EDGEPROXY_ADMIN_TOKEN"),
        help="edge.admin.token, when set (default: $EDGEPROXY_ADMIN_TOKEN)",
    )
    inv.set_defaults(run=_invalidate)
    return parser


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        help="our YAML, a Terraform .tf file or folder, terraform show -json output, AWS API "
        "get-distribution(-config) JSON or a CloudFormation template; given again, a later "
        "file overlays an earlier one (e.g. edge.yaml)",
    )
    _source_args(parser)


def _source_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Terraform variable or CloudFormation parameter",
    )
    parser.add_argument("--var-file", action="append", default=[], type=Path, help=".tfvars file")
    parser.add_argument(
        "--distribution", metavar="NAME|ID", help="which distribution, when a file holds several"
    )


def _configs(args: argparse.Namespace) -> list[Path]:
    return list(args.config or [DEFAULT_CONFIG])


def _options(args: argparse.Namespace) -> SourceOptions:
    variables = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError([("--var", f"must be NAME=VALUE, not {item!r}")])
        variables[name] = value
    return SourceOptions(variables, tuple(args.var_file), args.distribution)


def _overrides(args: argparse.Namespace) -> ConfigOverrides:
    # Not every subcommand defines these flags: argparse leaves the attribute out then.
    return ConfigOverrides(
        host=getattr(args, "host", None),
        http_port=getattr(args, "port", None),
        https_port=getattr(args, "https_port", None) or None,  # 0: as the config says
        origin_url=getattr(args, "origin", None),
    )


def _load(args: argparse.Namespace) -> LoadedConfig:
    loaded = load_config(_configs(args), overrides=_overrides(args), options=_options(args))
    for warning in loaded.warnings:
        logging.getLogger("edgeproxy.config").warning("%s", warning)
    return loaded


def _serve(args: argparse.Namespace) -> int:
    from edgeproxy.reload import ConfigSource
    from edgeproxy.runtime import serve_forever

    loaded = _load(args)
    if args.workers > 1:
        return _serve_workers(args, loaded)
    # Saving any of the files reloads them all.
    source = ConfigSource(tuple(_configs(args)), lambda: _load(args))
    with _runner() as runner:
        runner.run(serve_forever(loaded.config, http_port=args.port or 8080, reload=source))
    return 0


def _serve_workers(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    from edgeproxy.routes import Routes
    from edgeproxy.supervisor import serve_workers

    Routes(loaded.config)  # a broken handler is reported here, before any worker starts
    with _runner() as runner:
        runner.run(serve_workers(_configs(args), _overrides(args), args.workers, _options(args)))
    return 0


def _cert(args: argparse.Namespace) -> int:
    from edgeproxy.viewer.certs import cert_folder, describe, ensure_certificates, leaf_names

    config = _load(args).config
    files = ensure_certificates(cert_folder(config), leaf_names(config))
    port = config.edge.listeners.https_port or 8443
    print(describe(files, f"https://localhost:{port}/"))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from edgeproxy.routes import Routes

    loaded = _load(args)
    Routes(loaded.config)  # loads every handler: a missing or broken file fails here
    print(f"{', '.join(map(str, _configs(args)))}: OK")
    return 0


def _import(args: argparse.Namespace) -> int:
    from edgeproxy.config.importing import import_source

    out: Path | None = args.out
    text, notes = import_source(
        args.source, _options(args), out.parent if out is not None else Path.cwd()
    )
    for note in notes:
        print(f"edgeproxy: not resolved: {note}", file=sys.stderr)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        print(f"edgeproxy: wrote {out}", file=sys.stderr)
    return 0


def _demo_origin(args: argparse.Namespace) -> int:
    from aiohttp import web

    from edgeproxy.origin.demo import demo_origin_app

    with _runner() as runner:
        web.run_app(
            demo_origin_app(args.root),
            host=args.host,
            port=args.port,
            print=print,
            loop=runner.get_loop(),
        )
    return 0


def _invalidate(args: argparse.Namespace) -> int:
    body = json.dumps({"paths": args.paths}).encode()
    headers = {"Content-Type": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    request = urllib.request.Request(f"{args.admin}/invalidations", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(response.read().decode())
    except urllib.error.HTTPError as err:  # 400 bad paths, 401 token missing or wrong
        refusal = f"{err.code} {err.read().decode(errors='replace')}"
        print(f"edgeproxy: the admin API refused: {refusal}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"edgeproxy: cannot reach the admin API at {args.admin}: {err}", file=sys.stderr)
        return 1
    return 0


def _runner() -> asyncio.Runner:
    from edgeproxy.runtime import runner

    return runner()


if __name__ == "__main__":
    sys.exit(main())
