"""docker-compose.yml and the Dockerfile agree with the demo config.

No Docker engine runs in the tests; these files are a template, checked here so that a port
or path changed in config/distribution.yaml cannot silently break `docker compose up`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    found: dict[str, Any] = load("docker-compose.yml")["services"]
    return found


@pytest.fixture(scope="module")
def edge_config() -> dict[str, Any]:
    found: dict[str, Any] = load("config/distribution.yaml")["edge"]
    return found


def container_ports(service: dict[str, Any]) -> dict[int, int]:
    """Published ports as {container port: host port}, from "host:container" strings."""
    published = {}
    for entry in service.get("ports", []):
        host, _, container = str(entry).rpartition(":")
        published[int(container)] = int(host)
    return published


def option(command: list[str], name: str) -> str:
    """The value after ``name`` in an argv list."""
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def test_compose_has_an_edge_and_an_origin(services: dict[str, Any]) -> None:
    assert {"edge", "origin"} <= set(services)
    assert services["edge"]["command"][0] == "serve"
    assert services["origin"]["command"][0] == "demo-origin"
    assert "origin" in services["edge"]["depends_on"]


def test_edge_publishes_the_configured_http_port(
    services: dict[str, Any], edge_config: dict[str, Any]
) -> None:
    port = edge_config["listeners"]["http_port"]
    assert container_ports(services["edge"]).get(port) == port


def test_edge_publishes_the_configured_https_port(
    services: dict[str, Any], edge_config: dict[str, Any]
) -> None:
    port = edge_config["listeners"]["https_port"]
    assert container_ports(services["edge"]).get(port) == port


def test_edge_can_write_its_certificates_to_the_host(
    services: dict[str, Any], edge_config: dict[str, Any]
) -> None:
    """/config is read-only: the certificate folder is mounted writable over it."""
    cert_dir = "/config/" + edge_config.get("tls", {}).get("cert_dir", ".edgeproxy/certs")
    writable = [v for v in services["edge"]["volumes"] if not v.endswith(":ro")]
    assert any(cert_dir.startswith(v.split(":")[1] + "/") for v in writable), writable


def test_origin_publishes_and_listens_on_the_demo_origin_port(
    services: dict[str, Any], edge_config: dict[str, Any]
) -> None:
    port = edge_config["demo_origin"]["port"]
    command = services["origin"]["command"]
    assert container_ports(services["origin"]).get(port) == port
    assert int(option(command, "--port")) == port
    assert option(command, "--host") == "0.0.0.0"


def test_origin_serves_the_demo_site_from_the_mounted_config(
    services: dict[str, Any], edge_config: dict[str, Any]
) -> None:
    root = option(services["origin"]["command"], "--root")
    assert root == "/config/" + edge_config["demo_origin"]["root"]
    assert (ROOT / "config" / edge_config["demo_origin"]["root"] / "index.html").is_file()


@pytest.mark.parametrize("name", ["edge", "origin"])
def test_services_mount_the_config_read_only(services: dict[str, Any], name: str) -> None:
    assert "./config:/config:ro" in services[name]["volumes"]


def test_edge_serves_the_mounted_config_and_fetches_from_the_origin_service(
    services: dict[str, Any], edge_config: dict[str, Any]
) -> None:
    command = services["edge"]["command"]
    assert option(command, "--config") == "/config/distribution.yaml"
    assert option(command, "--host") == "0.0.0.0"
    origin = urlsplit(option(command, "--origin"))
    assert origin.hostname == "origin"
    assert origin.port == edge_config["demo_origin"]["port"]


def test_dockerfile_exposes_the_listeners_and_serves_the_config() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert "FROM python:3.11-slim" in lines
    assert "EXPOSE 8080 8443" in lines
    assert 'ENTRYPOINT ["edgeproxy"]' in lines
    assert 'CMD ["serve", "--config", "/config/distribution.yaml", "--host", "0.0.0.0"]' in lines
    assert "RUN pip install ." in lines


# The regional topology (profile "regional"): Redis and two PoPs of one distribution.
POPS = ("pop-a", "pop-b")


def serve_args(service: dict[str, Any]) -> Any:
    """The service's command parsed by edgeproxy's own command line."""
    from edgeproxy import cli

    return cli._parser().parse_args(service["command"])


def test_the_regional_topology_is_a_profile_of_its_own(services: dict[str, Any]) -> None:
    for name in ("redis", *POPS):
        assert services[name]["profiles"] == ["regional"], name
    assert "profiles" not in services["edge"]  # `docker compose up` is the demo as before
    assert services["redis"]["command"][0] == "redis-server"


def test_each_pop_has_its_own_name_and_port_and_shares_redis(
    services: dict[str, Any], edge_config: dict[str, Any]
) -> None:
    args = [serve_args(services[name]) for name in POPS]
    assert all(a.run.__name__ == "_serve" for a in args)
    assert len({a.pop for a in args}) == 2
    assert {a.regional_cache for a in args} == {"redis://redis:6379/0"}  # the redis service
    assert {urlsplit(a.origin).hostname for a in args} == {"origin"}
    published = [container_ports(services[name]) for name in POPS]
    port = edge_config["listeners"]["http_port"]
    assert all(set(p) == {port} for p in published), published
    assert len({p[port] for p in published}) == 2  # different host ports
    assert all({"origin", "redis"} <= set(services[name]["depends_on"]) for name in POPS)
    certs = [v for name in POPS for v in services[name]["volumes"] if v.endswith("/.edgeproxy")]
    assert len(set(certs)) == 2  # no two PoPs write one certificate folder


def test_each_pop_command_loads_the_demo_config_as_that_pop() -> None:
    """The flags are applied to the mounted config (/config is ./config) as serve does."""
    from edgeproxy import cli
    from edgeproxy.config.loading import load_config

    for name in POPS:
        args = serve_args(load("docker-compose.yml")["services"][name])
        assert args.config == [Path("/config/distribution.yaml")]
        config = load_config(ROOT / "config/distribution.yaml", overrides=cli._overrides(args))
        edge = config.config.edge
        assert edge.pop == args.pop
        assert edge.regional_cache is not None
        assert edge.regional_cache.redis == "redis://redis:6379/0"
        assert edge.listeners.host == "0.0.0.0"
