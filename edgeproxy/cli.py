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

from edgeproxy.config.config_model import Config
from edgeproxy.config.loading import LoadedConfig, load_config
from edgeproxy.config.overrides import ConfigOverrides
from edgeproxy.config.sources import SourceOptions
from edgeproxy.errors import ConfigError, HandlerLoadError, ListenerError
from edgeproxy.functions import invoke
from edgeproxy.functions.cloudfront import testing
from edgeproxy.functions.hooks import Hook
from edgeproxy.stages import Stage

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
from CloudFront), reliability.md, performance.md, observability.md (metrics, logs)."""


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
    except ListenerError as err:  # one line: which listener, where, what moves it
        print(f"edgeproxy: {err}", file=sys.stderr)
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
    _side_port_args(serve)
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (default 1)"
    )
    serve.add_argument("--pop", metavar="NAME", help="this PoP's name (default: edge.pop)")
    serve.add_argument(
        "--regional-cache",
        metavar="URL",
        help="the regional tier every PoP shares: redis://HOST:PORT/DB "
        "(default: edge.regional_cache.redis)",
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
    _invoke_config_args(sub.choices["invoke"])
    testing.register(sub)  # test-function (CloudFront Functions)

    inv = sub.add_parser("invalidate", help="invalidate cached paths ('/img/*', '/a.html')")
    inv.add_argument("paths", nargs="+")
    _invalidate_args(inv)
    for command in sub.choices.values():  # also after the command: `serve --log-level DEBUG`
        command.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _side_port_args(serve: argparse.ArgumentParser) -> None:
    """``serve --admin-port`` and ``--origin-port``, beside the viewer port flags."""
    serve.add_argument(
        "--admin-port", type=int, help="admin API port (default: edge.admin.port; 0: any free)"
    )
    serve.add_argument(
        "--origin-port",
        type=int,
        help="the demo origin's port (default: edge.demo_origin.port; 0: any free)",
    )


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
        pop=getattr(args, "pop", None),
        regional_cache=getattr(args, "regional_cache", None),
        admin_port=getattr(args, "admin_port", None),
        origin_port=getattr(args, "origin_port", None),
    )


def _load(args: argparse.Namespace) -> LoadedConfig:
    loaded = load_config(_configs(args), overrides=_overrides(args), options=_options(args))
    for warning in loaded.warnings:
        logging.getLogger("edgeproxy.config").warning("%s", warning)
    return loaded


def _serve(args: argparse.Namespace) -> int:
    from edgeproxy.log_setup import configure_logs
    from edgeproxy.reload import ConfigSource
    from edgeproxy.runtime import serve_forever

    loaded = _load(args)
    configure_logs(loaded.config)  # edge.logs; a worker's own: supervisor.worker_main
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
        runner.run(
            serve_workers(
                _configs(args), _overrides(args), args.workers, _options(args), args.log_level
            )
        )
    return 0


def _cert(args: argparse.Namespace) -> int:
    from edgeproxy.viewer.certs import cert_folder, describe, ensure_certificates, leaf_names

    config = _load(args).config
    files = ensure_certificates(cert_folder(config), leaf_names(config))
    port = config.edge.listeners.https_port or 8443
    print(describe(files, f"https://localhost:{port}/"))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from edgeproxy.checks import every_problem

    loaded, problems = every_problem(_configs(args), _options(args), _overrides(args))
    if problems:
        raise ConfigError(problems)  # main prints them all, with their key paths
    assert loaded is not None  # no problem: it loaded
    for warning in loaded.warnings:
        logging.getLogger("edgeproxy.config").warning("%s", warning)
    print(f"{', '.join(map(str, _configs(args)))}: OK")
    return 0


def _invoke_config_args(parser: argparse.ArgumentParser) -> None:
    """``invoke --config FILE --path P``: the call as the edge would make it for P."""
    _config_args(parser)
    parser.add_argument(
        "--scheme",
        choices=("http", "https"),
        default="https",
        help="with --config: the listener the viewer used (default https)",
    )
    parser.set_defaults(run=_invoke_at_edge)


def _invoke_at_edge(args: argparse.Namespace) -> int:
    if args.config is None:  # the handler alone, with a sample event
        return invoke.invoke_alone(args)
    config = _load(args).config
    return invoke.command(args, lambda stage, given: _edge_prepared(config, stage, given))


def _edge_prepared(
    config: Config, stage: Stage, args: argparse.Namespace
) -> tuple[Hook, invoke.Invocation]:
    from edgeproxy.edge_invoke import NoFunction, behavior_key, edge_call

    if args.event is not None:
        raise ConfigError([("--event", "the event file already is the request: drop --config")])
    if args.include_body:
        decides = "with --config the association's include_body decides"
        raise ConfigError([("--include-body", decides)])
    try:
        call = edge_call(config, stage, args, args.scheme)
    except NoFunction as err:
        raise ConfigError([(f"--path {args.uri}", str(err))]) from None
    if invoke.has_body(args) and not call.invocation.include_body:
        where = f"{behavior_key(config, call.route)}.lambda_function_association"
        raise ConfigError(
            [("--body", f"{where} ({stage}) has no include_body: the function gets no body")]
        )
    return call.hook, call.invocation


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


DEFAULT_ADMIN = "http://127.0.0.1:9901"


def _invalidate_args(inv: argparse.ArgumentParser) -> None:
    """``invalidate``: the admin API's address and token from ``--config``, or given."""
    inv.add_argument(
        "--admin",
        help=f"admin API URL (default: edge.admin of --config, else {DEFAULT_ADMIN})",
    )
    inv.add_argument(
        "--token",
        help="edge.admin.token, when set (default: --config's, else $EDGEPROXY_ADMIN_TOKEN)",
    )
    _config_args(inv)
    inv.set_defaults(run=_invalidate)


def _admin_of(args: argparse.Namespace) -> tuple[str, str | None]:
    """The admin URL and token: given, else the config's (edge.admin), else the defaults."""
    token = args.token or os.environ.get("EDGEPROXY_ADMIN_TOKEN")
    if args.config is None:
        return args.admin or DEFAULT_ADMIN, token
    from edgeproxy.runtime import url_host

    admin = _load(args).config.edge.admin
    if args.admin is None and not admin.port:  # None: no admin API; 0: a port chosen at start
        why = "is not set: the admin API is off" if admin.port is None else "is 0 (any free)"
        raise ConfigError([("edge.admin.port", f"{why}; give --admin URL")])
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(admin.host, admin.host)  # any → here
    url = args.admin or f"http://{url_host(host)}:{admin.port}"
    return url, args.token or admin.token or token


def _invalidate(args: argparse.Namespace) -> int:
    args.admin, args.token = _admin_of(args)
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
