"""Distributions as teams already keep them: Terraform HCL, ``terraform show -json``, the AWS
API's get-distribution(-config) JSON and CloudFormation templates, each served through a real
edge with the behaviors, policies and Lambda@Edge functions the source says; a second
``--config`` (edge.yaml) overlays it with what only the simulator needs.

Terraform's argument names are the AWS provider's (registry.terraform.io/providers/hashicorp/
aws/latest/docs/resources/cloudfront_distribution); the API shape is CloudFront's
DistributionConfig (docs.aws.amazon.com/cloudfront/latest/APIReference/
API_DistributionConfig.html); the template shape is AWS::CloudFront::Distribution
(docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-cloudfront-distribution.html).
"""

from __future__ import annotations

import json
import shutil
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import FakeClock, RecordingOrigin, Viewer

from edgeproxy.config.loading import load_config
from edgeproxy.config.sources import SourceOptions, sniff
from edgeproxy.errors import ConfigError
from edgeproxy.runtime import running_edge

SOURCES = Path(__file__).parent / "data" / "sources"
TERRAFORM = SOURCES / "terraform"

StartFiles = Callable[..., Any]


def edge_overlay(tmp_path: Path, origin: RecordingOrigin, names: list[str], **edge: Any) -> Path:
    """The simulator's own settings for a source: every origin name resolved to ``origin``,
    an HTTPS listener (the behaviors redirect or refuse HTTP)."""
    document = {
        "edge": {
            "listeners": {"http_port": 0, "https_port": 0},
            "admin": {"port": 0},
            "resolve": {name: f"127.0.0.1:{origin.port}" for name in names},
            "tls": {"cert_dir": str(tmp_path / "certs")},
            **edge,
        }
    }
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
async def start_files(clock: FakeClock) -> AsyncIterator[StartFiles]:
    """``viewer = await start_files([source, edge.yaml], options)``: a real edge serving the
    files as ``edgeproxy serve --config A --config B`` would, over HTTPS."""
    stack: list[Any] = []

    async def start(paths: list[Path], options: SourceOptions | None = None) -> Viewer:
        config = load_config(paths, options=options).config
        context = running_edge(config, clock=clock, use_dns=False)
        running = await context.__aenter__()
        ca = Path(config.edge.tls.cert_dir) / "ca.pem"
        client = httpx.AsyncClient(timeout=10, verify=ssl.create_default_context(cafile=ca))
        stack.append((context, client))
        return Viewer(running, client)

    yield start
    for context, client in reversed(stack):
        await client.aclose()
        await context.__aexit__(None, None, None)


async def https_get(viewer: Viewer, path: str, **kwargs: Any) -> httpx.Response:
    port = viewer.running.ports["https"]
    return await viewer.client.get(f"https://localhost:{port}{path}", **kwargs)


TF_NAMES = ["example-site-assets.s3.eu-west-1.amazonaws.com", "api.example.com"]


async def test_a_terraform_folder_serves_as_it_says(
    tmp_path: Path, origin: RecordingOrigin, start_files: StartFiles
):
    viewer = await start_files([TERRAFORM, edge_overlay(tmp_path, origin, TF_NAMES)])

    # /api/*: the viewer-request function (aws_lambda_function via archive_file), the
    # origin request policy's header, the custom cache policy, the origin-response function.
    api = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert api.status_code == 200
    seen = origin.requests_for("/staging/api/users")[-1]  # origin_path = "/${var.environment}"
    assert seen.query_string == "page=2&auth=checked"
    assert seen.headers["X-Request-Tag"] == "t1"
    assert api.headers["x-origin-response"] == "EDFDVBD6EXAMPLE"
    assert api.headers["x-cache"] == "Miss from cloudfront"
    assert await viewer.last_stages() == ["viewer-request", "origin-response"]
    again = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert again.headers["x-cache"] == "Hit from cloudfront"

    # Default behavior: managed CachingOptimized (by data source name) and the response
    # headers policy's custom header from var.environment.
    page = await https_get(viewer, "/index.html")
    assert page.headers["x-site-stage"] == "staging"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-served-by"] == "cloudfront-function"  # aws_cloudfront_function
    assert "x-origin-response" not in page.headers
    assert (await https_get(viewer, "/index.html")).headers["x-cache"] == "Hit from cloudfront"

    # A dynamic block over var.static_paths: /img/* allows HTTP.
    http_port = viewer.running.ports["http"]
    img = await viewer.client.get(f"http://localhost:{http_port}/img/a.png")
    assert img.status_code == 200
    assert img.headers["x-cache"] == "Miss from cloudfront"
    assert "x-site-stage" not in img.headers
    redirected = await viewer.client.get(f"http://localhost:{http_port}/index.html")
    assert redirected.status_code == 301


def test_terraform_notes_what_it_cannot_resolve_with_file_and_line(tmp_path: Path):
    loaded = load_config([TERRAFORM])
    [note] = [w for w in loaded.warnings if "acm_certificate_arn" in w]
    assert note.startswith("main.tf:234: distribution.viewer_certificate[0].acm_certificate_arn")
    assert "data.aws_acm_certificate.site" in note


def test_terraform_variables_from_the_command_line_win(tmp_path: Path):
    options = SourceOptions(variables={"environment": "prod", "api_domain": "api.prod.example"})
    distribution = load_config([TERRAFORM], options=options).config.distribution
    api = distribution.origin_by_id("api-prod")
    assert (api.domain_name, api.origin_path) == ("api.prod.example", "/prod")


def test_terraform_problems_name_file_and_line_all_in_one_run(tmp_path: Path):
    folder = tmp_path / "tf"
    shutil.copytree(TERRAFORM, folder)
    main = folder / "main.tf"
    text = main.read_text()
    text = text.replace(
        'viewer_protocol_policy     = "redirect-to-https"', 'viewer_protocol_policy = "sometimes"'
    )
    text = text.replace("error_code            = 404", "error_code            = 499")
    main.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config([folder])
    problems = dict(caught.value.problems)
    assert any(
        k.startswith("main.tf:") and "default_cache_behavior" in k and "viewer_protocol_policy" in k
        for k in problems
    )
    assert any(
        k.startswith("main.tf:") and "custom_error_response[0].error_code" in k for k in problems
    )


def test_a_tf_file_and_json_are_told_apart_by_content():
    assert sniff(TERRAFORM) == "terraform"
    assert sniff(TERRAFORM / "main.tf") == "terraform"
    assert sniff(SOURCES / "get-distribution-config.json") == "aws-api"
    assert sniff(SOURCES / "cloudformation.yaml") == "cloudformation"
    assert sniff(Path(__file__).parent.parent / "config" / "distribution.yaml") == "yaml"


async def test_get_distribution_config_json_serves_with_functions_by_name(
    tmp_path: Path, origin: RecordingOrigin, start_files: StartFiles
):
    """The API output has only ARNs: edge.functions maps each function by name, so a new
    published version needs no edit."""
    functions = {
        "site-staging-viewer-auth": {
            "handler": "index.handler",
            "code": str(TERRAFORM / "functions" / "viewer_auth"),
            "runtime": "python3.12",
        },
        "arn:aws:lambda:us-east-1:123456789012:function:site-staging-origin-headers": {
            "handler": "app.on_response",
            "code": str(TERRAFORM / "functions" / "origin_headers"),
            "runtime": "python3.12",
        },
    }
    overlay = edge_overlay(tmp_path, origin, TF_NAMES, functions=functions)
    viewer = await start_files([SOURCES / "get-distribution-config.json", overlay])

    api = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert api.status_code == 200
    seen = origin.requests_for("/staging/api/users")[-1]
    assert seen.query_string == "page=2&auth=checked"
    assert seen.headers["X-Request-Tag"] == "t1"  # forwarded_values.headers
    assert api.headers["x-origin-response"] == "EDFDVBD6EXAMPLE"
    assert await viewer.last_stages() == ["viewer-request", "origin-response"]
    again = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert again.headers["x-cache"] == "Hit from cloudfront"
    page = await https_get(viewer, "/index.html")
    assert page.headers["x-cache"] == "Miss from cloudfront"
    # Managed-SecurityHeadersPolicy (67f7725c-…) by ID
    assert page.headers["x-frame-options"] == "SAMEORIGIN"


def test_an_unknown_key_in_api_json_is_named_by_its_json_path(tmp_path: Path):
    data = json.loads((SOURCES / "get-distribution-config.json").read_text())
    data["DistributionConfig"]["DefaultCacheBehavior"]["ViewerProtocolPolicy"] = "sometimes"
    data["DistributionConfig"]["CacheBehaviors"]["Items"][1]["TargetOriginId"] = "nowhere"
    path = tmp_path / "dist.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    keys = [key for key, _ in caught.value.problems]
    assert any(
        k.startswith("DistributionConfig.DefaultCacheBehavior.ViewerProtocolPolicy:") for k in keys
    )
    assert any(k.startswith("DistributionConfig.CacheBehaviors[1].TargetOriginId:") for k in keys)


async def test_a_cloudformation_template_serves_as_it_says(
    tmp_path: Path, origin: RecordingOrigin, start_files: StartFiles
):
    """Short-form tags, parameters' defaults, a CachePolicy by !Ref and a Lambda version whose
    function's code is a CDK asset folder."""
    names = ["example-site-assets.s3.us-east-1.amazonaws.com", "api.example.com"]
    viewer = await start_files(
        [SOURCES / "cloudformation.yaml", edge_overlay(tmp_path, origin, names)]
    )
    api = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert api.status_code == 200
    seen = origin.requests_for("/staging/api/users")[-1]
    assert seen.query_string == "page=2&auth=checked"
    assert await viewer.last_stages() == ["viewer-request"]
    other = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t2"})
    assert other.headers["x-cache"] == "Miss from cloudfront"  # X-Request-Tag is in the key
    again = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert again.headers["x-cache"] == "Hit from cloudfront"


# --- terraform show -json ------------------------------------------------------------------

SHOW_JSON = TERRAFORM / "terraform-show.json"  # `terraform show -json` run in that folder


async def test_terraform_show_json_serves_as_the_folder_does(
    tmp_path: Path, origin: RecordingOrigin, start_files: StartFiles
):
    """State as `terraform show -json` prints it (values.root_module.resources[], provider
    placeholders "", 0, [] and null for every unset argument): the same behaviors, policies
    and functions as the folder it came from, code found through archive_file."""
    viewer = await start_files([SHOW_JSON, edge_overlay(tmp_path, origin, TF_NAMES)])

    api = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert api.status_code == 200
    seen = origin.requests_for("/staging/api/users")[-1]
    assert seen.query_string == "page=2&auth=checked"
    assert seen.headers["X-Request-Tag"] == "t1"
    assert api.headers["x-cache"] == "Miss from cloudfront"
    assert await viewer.last_stages() == ["viewer-request", "origin-response"]
    again = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert again.headers["x-cache"] == "Hit from cloudfront"

    page = await https_get(viewer, "/index.html")
    assert page.headers["x-site-stage"] == "staging"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-served-by"] == "cloudfront-function"  # the state's code
    assert page.headers["x-cache"] == "Miss from cloudfront"
    assert (await https_get(viewer, "/index.html")).headers["x-cache"] == "Hit from cloudfront"

    http_port = viewer.running.ports["http"]
    css = await viewer.client.get(f"http://localhost:{http_port}/css/site.css")
    assert (css.status_code, css.headers["x-cache"]) == (200, "Miss from cloudfront")
    assert (await viewer.client.get(f"http://localhost:{http_port}/index.html")).status_code == 301


async def test_the_states_domain_name_id_and_aliases_are_the_edges(
    tmp_path: Path, origin: RecordingOrigin, start_files: StartFiles
):
    """The state's domain_name and id are the event's config.distributionDomainName and
    distributionId (DG lambda-event-structure.html#request-event-fields-request-config); the
    cache key's host is the distribution's domain name whatever alias the viewer used, and a
    Host that is neither is 403 (DG CNAMEs.html: CloudFront answers only its names)."""
    viewer = await start_files([SHOW_JSON, edge_overlay(tmp_path, origin, TF_NAMES)])
    api = await https_get(viewer, "/api/a", headers={"Host": "www.example.com"})
    assert api.headers["x-origin-response"] == "E2QWRUHEXAMPLE"
    assert api.headers["x-distribution-domain"] == "d2xq5example.cloudfront.net"

    first = await https_get(viewer, "/img/a.png", headers={"Host": "www.example.com"})
    assert first.headers["x-cache"] == "Miss from cloudfront"
    by_domain = await https_get(
        viewer, "/img/a.png", headers={"Host": "d2xq5example.cloudfront.net"}
    )
    assert by_domain.headers["x-cache"] == "Hit from cloudfront"
    default_name = await https_get(
        viewer, "/img/a.png", headers={"Host": "d111111abcdef8.cloudfront.net"}
    )
    assert default_name.status_code == 403


def test_a_terraform_plan_reads_its_planned_values(tmp_path: Path):
    """`terraform show -json plan.tfplan`: the same resources under planned_values."""
    state = json.loads(SHOW_JSON.read_text())
    plan = {
        "format_version": "1.2",
        "terraform_version": state["terraform_version"],
        "planned_values": state["values"],
        "resource_changes": [],
    }
    shutil.copytree(TERRAFORM, tmp_path / "tf")
    path = tmp_path / "tf" / "plan.json"
    path.write_text(json.dumps(plan))
    assert sniff(path) == "terraform-json"
    config = load_config([path]).config
    assert [b.path_pattern for b in config.distribution.ordered_cache_behavior] == [
        "/api/*",
        "/img/*",
        "/css/*",
    ]
    assert config.edge.distribution_id == "E2QWRUHEXAMPLE"


def test_show_json_with_several_distributions_needs_distribution(tmp_path: Path):
    state = json.loads(SHOW_JSON.read_text())
    resources = state["values"]["root_module"]["resources"]
    [site] = [r for r in resources if r["type"] == "aws_cloudfront_distribution"]
    second = json.loads(json.dumps(site))
    second["address"], second["name"] = "aws_cloudfront_distribution.docs", "docs"
    second["values"]["id"] = "E3DOCSEXAMPLE"
    resources.append(second)
    shutil.copytree(TERRAFORM, tmp_path / "tf")
    path = tmp_path / "tf" / "state.json"
    path.write_text(json.dumps(state))
    with pytest.raises(ConfigError) as caught:
        load_config([path])
    [(key, message)] = caught.value.problems
    assert key == "--distribution"
    assert "aws_cloudfront_distribution.site (E2QWRUHEXAMPLE)" in message
    assert "aws_cloudfront_distribution.docs (E3DOCSEXAMPLE)" in message
    picked = load_config([path], options=SourceOptions(distribution="E3DOCSEXAMPLE"))
    assert picked.config.edge.distribution_id == "E3DOCSEXAMPLE"


# --- the distribution's own names from the API and CloudFormation ---------------------------

FUNCTIONS_BY_NAME = {
    "site-staging-viewer-auth": {
        "handler": "index.handler",
        "code": str(TERRAFORM / "functions" / "viewer_auth"),
        "runtime": "python3.12",
    },
    "site-staging-origin-headers": {
        "handler": "app.on_response",
        "code": str(TERRAFORM / "functions" / "origin_headers"),
        "runtime": "python3.12",
    },
}


CLOUDFORMATION = SOURCES / "cloudformation.yaml"


def functions_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "functions.yaml"
    path.write_text(yaml.safe_dump({"edge": {"functions": FUNCTIONS_BY_NAME}}))
    return path


def get_distribution(tmp_path: Path) -> Path:
    """`aws cloudfront get-distribution` output: the config inside Distribution, beside Id,
    ARN, Status, DomainName (APIReference API_GetDistribution.html, API_Distribution.html)."""
    config = json.loads((SOURCES / "get-distribution-config.json").read_text())
    data = {
        "ETag": config["ETag"],
        "Distribution": {
            "Id": "E1GETDISTEXAMPLE",
            "ARN": "arn:aws:cloudfront::123456789012:distribution/E1GETDISTEXAMPLE",
            "Status": "Deployed",
            "LastModifiedTime": "2024-06-11T09:35:41.123000+00:00",
            "InProgressInvalidationBatches": 0,
            "DomainName": "d3getdist.cloudfront.net",
            "ActiveTrustedSigners": {"Enabled": False, "Quantity": 0},
            "ActiveTrustedKeyGroups": {"Enabled": False, "Quantity": 0},
            "DistributionConfig": config["DistributionConfig"],
            "AliasICPRecordals": [{"CNAME": "www.example.com", "ICPRecordalStatus": "APPROVED"}],
        },
    }
    path = tmp_path / "get-distribution.json"
    path.write_text(json.dumps(data, indent=2))
    return path


async def test_get_distribution_json_gives_the_edge_its_id_and_domain_name(
    tmp_path: Path, origin: RecordingOrigin, start_files: StartFiles
):
    """Distribution.Id and DomainName are the events' distributionId and
    distributionDomainName; the cache key's host is that name for every alias."""
    overlay = edge_overlay(tmp_path, origin, TF_NAMES, functions=FUNCTIONS_BY_NAME)
    viewer = await start_files([get_distribution(tmp_path), overlay])
    api = await https_get(viewer, "/api/a", headers={"Host": "www.example.com"})
    assert api.headers["x-origin-response"] == "E1GETDISTEXAMPLE"
    assert api.headers["x-distribution-domain"] == "d3getdist.cloudfront.net"
    assert await viewer.last_stages() == ["viewer-request", "origin-response"]
    first = await https_get(viewer, "/img/a.png", headers={"Host": "www.example.com"})
    assert first.headers["x-cache"] == "Miss from cloudfront"
    again = await https_get(viewer, "/img/a.png", headers={"Host": "d3getdist.cloudfront.net"})
    assert again.headers["x-cache"] == "Hit from cloudfront"


def test_names_without_a_domain_in_the_source_keep_the_edges_defaults(tmp_path: Path):
    """get-distribution-config and a template say nothing of the domain CloudFront assigns:
    the edge's defaults stay (docs/configuration.md edge.distribution_domain_name)."""
    functions = functions_yaml(tmp_path)
    for paths in ([SOURCES / "get-distribution-config.json", functions], [CLOUDFORMATION]):
        config = load_config(paths).config
        assert config.edge.distribution_domain_name == "d111111abcdef8.cloudfront.net", paths
        assert config.edge.distribution_id == "EDFDVBD6EXAMPLE", paths
        assert config.distribution.aliases == ("www.example.com",), paths


def test_an_edge_yaml_after_the_source_overrides_its_names(tmp_path: Path):
    later = tmp_path / "edge.yaml"
    later.write_text(yaml.safe_dump({"edge": {"distribution_id": "ELOCALNAME"}}))
    config = load_config([get_distribution(tmp_path), functions_yaml(tmp_path), later]).config
    assert config.edge.distribution_id == "ELOCALNAME"
    assert config.edge.distribution_domain_name == "d3getdist.cloudfront.net"


# --- edgeproxy import ----------------------------------------------------------------------

CFN_NAMES = ["example-site-assets.s3.us-east-1.amazonaws.com", "api.example.com"]
IMPORTS = [
    # (source, names to resolve, stages at /api/*, a behavior's comment in the written file)
    (TERRAFORM, TF_NAMES, ["viewer-request", "origin-response"], "# from main.tf:187"),
    (
        SHOW_JSON,
        TF_NAMES,
        ["viewer-request", "origin-response"],
        "# from terraform-show.json: values.root_module.resources[5].values"
        ".ordered_cache_behavior[0]",
    ),
    (
        SOURCES / "get-distribution-config.json",
        TF_NAMES,
        ["viewer-request", "origin-response"],
        "# from get-distribution-config.json: DistributionConfig.CacheBehaviors[0]",
    ),
    (
        CLOUDFORMATION,
        CFN_NAMES,
        ["viewer-request"],
        "# from cloudformation.yaml: Resources.Distribution.Properties.DistributionConfig"
        ".CacheBehaviors[0]",
    ),
]


@pytest.mark.parametrize(("source", "names", "stages", "comment"), IMPORTS)
async def test_an_imported_source_serves_as_the_source_does(
    source: Path,
    names: list[str],
    stages: list[str],
    comment: str,
    tmp_path: Path,
    origin: RecordingOrigin,
    start_files: StartFiles,
):
    from edgeproxy.cli import main

    written = tmp_path / "site" / "distribution.yaml"
    written.parent.mkdir()
    assert main(["import", str(source), "--out", str(written)]) == 0
    text = written.read_text()
    assert comment in text
    assert sniff(written) == "yaml"
    overlay = edge_overlay(tmp_path, origin, names, functions=FUNCTIONS_BY_NAME)
    from_source = load_config([source, overlay]).config
    imported = load_config([written, overlay]).config
    source_folder = source if source.is_dir() else source.parent
    assert _code_anchored(imported.distribution.model_dump(), written.parent) == (
        _code_anchored(from_source.distribution.model_dump(), source_folder)
    )
    assert imported.edge.distribution_id == from_source.edge.distribution_id

    viewer = await start_files([written, overlay])
    api = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert api.status_code == 200
    assert origin.requests_for("/staging/api/users")[-1].query_string == "page=2&auth=checked"
    assert await viewer.last_stages() == stages
    assert api.headers["x-cache"] == "Miss from cloudfront"
    again = await https_get(viewer, "/api/users?page=2", headers={"X-Request-Tag": "t1"})
    assert again.headers["x-cache"] == "Hit from cloudfront"


def _code_anchored(value: Any, base: Path) -> Any:
    """A dumped distribution with every function folder (``code``) as the path it names from
    ``base``: the import writes them relative to its file when that is shorter, so only
    where they point can match, whatever folder the checkout is in."""
    if isinstance(value, dict):
        return {
            k: str((base / v).resolve())
            if k == "code" and isinstance(v, str)
            else _code_anchored(v, base)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_code_anchored(v, base) for v in value]
    return value


def test_import_code_folders_are_relative_to_the_written_file(tmp_path: Path):
    from edgeproxy.cli import main

    folder = tmp_path / "tf"
    shutil.copytree(TERRAFORM, folder)
    written = folder / "local" / "edge.yaml"
    written.parent.mkdir()
    assert main(["import", str(folder), "--out", str(written)]) == 0
    document = yaml.safe_load(written.read_text())
    [api] = [
        b for b in document["distribution"]["ordered_cache_behavior"] if "api" in b["path_pattern"]
    ]
    codes = [a["code"] for a in api["lambda_function_association"]]
    assert codes == ["../functions/viewer_auth", "../functions/origin_headers"]
    [entry] = document["edge"]["functions"].values()  # the aws_cloudfront_function
    assert entry == {"file": "../functions/cloudfront/served_by.js", "runtime": "cloudfront-js-2.0"}
    assert (
        "# Not resolved: main.tf:234: distribution.viewer_certificate[0].acm_certificate_arn"
        in (written.read_text())
    )


# --- --var-file and --distribution -----------------------------------------------------------


async def test_var_files_are_read_in_order_and_var_wins(
    tmp_path: Path, origin: RecordingOrigin, start_files: StartFiles
):
    """Terraform's order: terraform.tfvars, *.auto.tfvars, each -var-file, then -var
    (developer.hashicorp.com/terraform/language/values/variables#variable-definition-precedence)."""
    prod = tmp_path / "prod.tfvars"
    prod.write_text('environment = "prod"\napi_domain = "api.prod.example"\n')
    later = tmp_path / "later.tfvars"
    later.write_text('static_paths = ["/media/*"]\n')
    names = [*TF_NAMES, "api.prod.example", "api.cli.example"]
    options = SourceOptions(variables={"api_domain": "api.cli.example"}, var_files=(prod, later))
    viewer = await start_files([TERRAFORM, edge_overlay(tmp_path, origin, names)], options)

    api = await https_get(viewer, "/api/a")
    assert api.status_code == 200
    seen = origin.requests_for("/prod/api/a")[-1]  # origin_path from prod.tfvars
    assert seen.headers["Host"] == "api.cli.example"  # --var over --var-file
    http_port = viewer.running.ports["http"]
    media = await viewer.client.get(f"http://localhost:{http_port}/media/a.png")
    assert media.status_code == 200  # the dynamic block over later.tfvars' list
    img = await viewer.client.get(f"http://localhost:{http_port}/img/a.png")
    assert img.status_code == 301  # the default's /img/* is gone


def test_var_file_flag_and_a_broken_var_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from edgeproxy.cli import main

    prod = tmp_path / "prod.tfvars"
    prod.write_text('environment = "prod"\n')
    out = tmp_path / "edge.yaml"
    args = ["import", str(TERRAFORM), "--var-file", str(prod), "--out", str(out)]
    assert main(args) == 0
    origins = yaml.safe_load(out.read_text())["distribution"]["origin"]
    assert [o.get("origin_path") for o in origins] == [None, "/prod"]

    broken = tmp_path / "broken.tfvars"
    broken.write_text("environment = \n")
    assert main(["validate", "--config", str(TERRAFORM), "--var-file", str(broken)]) == 2
    assert f"{broken}: cannot read variables" in capsys.readouterr().err


DOCS_TF = """
resource "aws_cloudfront_distribution" "docs" {
  enabled = true
  origin {
    origin_id   = "docs"
    domain_name = "docs.example.com"
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "http-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }
  default_cache_behavior {
    target_origin_id       = "docs"
    viewer_protocol_policy = "allow-all"
    allowed_methods        = ["GET", "HEAD"]
    cached_methods         = ["GET", "HEAD"]
    cache_policy_id        = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  }
  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }
  viewer_certificate {
    cloudfront_default_certificate = true
  }
}
"""


async def test_distribution_picks_one_of_a_folders_distributions(
    tmp_path: Path,
    origin: RecordingOrigin,
    start_files: StartFiles,
    capsys: pytest.CaptureFixture[str],
):
    from edgeproxy.cli import main

    folder = tmp_path / "tf"
    shutil.copytree(TERRAFORM, folder)
    (folder / "docs.tf").write_text(DOCS_TF)

    assert main(["validate", "--config", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "--distribution: " in err
    assert "docs (aws_cloudfront_distribution.docs)" in err
    assert "site (aws_cloudfront_distribution.site)" in err
    assert main(["validate", "--config", str(folder), "--distribution", "nowhere"]) == 2
    assert "names none of the distributions" in capsys.readouterr().err

    overlay = edge_overlay(tmp_path, origin, ["docs.example.com"])
    viewer = await start_files([folder, overlay], SourceOptions(distribution="docs"))
    http_port = viewer.running.ports["http"]
    page = await viewer.client.get(f"http://localhost:{http_port}/guide.html")
    assert (page.status_code, page.headers["x-cache"]) == (200, "Miss from cloudfront")
    assert origin.requests_for("/guide.html")
    by_address = load_config(
        [folder], options=SourceOptions(distribution="aws_cloudfront_distribution.docs")
    )
    assert [o.origin_id for o in by_address.config.distribution.origin] == ["docs"]


def test_a_function_without_code_in_the_files_is_one_problem_at_its_line(tmp_path: Path):
    """The function's code is in S3 (s3_bucket/s3_key): the files cannot locate it. One
    problem, at the function's block, naming the association it feeds; no second one about
    the association left without handler or lambda_arn."""
    folder = tmp_path / "tf"
    shutil.copytree(TERRAFORM, folder)
    main = folder / "main.tf"
    text = main.read_text().replace(
        "  filename         = data.archive_file.viewer_auth.output_path\n",
        '  s3_bucket        = "site-artifacts"\n  s3_key           = "viewer_auth.zip"\n',
    )
    main.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config([folder])
    problems = [p for p in caught.value.problems if "lambda_function_association" in p[0] + p[1]]
    assert len(problems) == 1, caught.value.problems
    [(place, message)] = problems
    assert place == "main.tf:117"
    assert "aws_lambda_function.viewer_auth" in message
    assert "ordered_cache_behavior[0].lambda_function_association[0]" in message


async def test_each_yaml_files_relative_paths_are_read_from_its_own_folder(tmp_path: Path):
    """`--config config/distribution.yaml --config local/edge.yaml`: the demo config's
    handlers, CloudFront Functions, KeyValueStore and demo site stay where that file says,
    though the later file is elsewhere; the later file's own paths are read from its folder."""
    from test_demo import demo_copy

    config = demo_copy(tmp_path)
    local = tmp_path / "local"
    (local / "certs-here").mkdir(parents=True)
    later = local / "edge.yaml"
    later.write_text(
        yaml.safe_dump(
            {
                "distribution": {"aliases": ["local.example.com"]},
                "edge": {"tls": {"cert_dir": "certs-here"}},
            }
        )
    )
    loaded = load_config([config, later]).config
    assert loaded.edge.demo_origin is not None
    assert loaded.base_dir / loaded.edge.demo_origin.root == config.parent / "demo-site"
    assert loaded.path(loaded.edge.tls.cert_dir) == local / "certs-here"
    async with (
        running_edge(loaded, use_dns=False) as running,
        httpx.AsyncClient(timeout=10) as client,
    ):
        page = await client.get(running.url("/"), headers={"Host": "local.example.com"})
        assert page.status_code == 200
