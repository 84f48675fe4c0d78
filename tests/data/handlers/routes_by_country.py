"""origin-request: viewers from Germany are served by the EU origin (eu.example.com, on the
port the distribution's origin passes in its X-Eu-Port custom header, under the path /eu), as
in AWS's "route by country" example: the handler sets the Host header itself."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    return _route(request, set_host=True)


def keeps_host(event, context):
    """The same switch without touching Host: CloudFront does not rewrite it (reference 2.6)."""
    request = event["Records"][0]["cf"]["request"]
    return _route(request, set_host=False)


def _route(request, set_host):
    country = request["headers"].get("cloudfront-viewer-country", [{"value": ""}])[0]["value"]
    if country != "DE":
        return request
    custom = request["origin"]["custom"]
    custom["domainName"] = "eu.example.com"
    custom["port"] = int(custom["customHeaders"]["x-eu-port"][0]["value"])
    custom["protocol"] = "http"
    custom["path"] = "/eu"  # fetched below the EU origin's own path
    if set_host:
        request["headers"]["host"] = [{"key": "Host", "value": "eu.example.com"}]
    return request
