"""viewer-request: reports the CloudFront-* headers its event shows, as
``X-Saw: name=value;name=value`` (sorted; ``-`` for none), so a test sees them at the origin."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    seen = sorted(
        f"{name}={entries[0]['value']}"
        for name, entries in request["headers"].items()
        if name.startswith("cloudfront-")
    )
    request["headers"]["x-saw"] = [{"key": "X-Saw", "value": ";".join(seen) or "-"}]
    return request
