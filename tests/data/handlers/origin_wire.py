"""Origin-response functions for the wire tests (tests/test_origin_wire.py)."""


def rebuild_headers(event, context):
    """What serverless-express / Mangum-style adapters do: the response's headers rebuilt
    from scratch out of the app's own, so the origin's Transfer-Encoding is gone."""
    response = event["Records"][0]["cf"]["response"]
    kept = {"content-type", "cache-control"}
    response["headers"] = {
        name: entries for name, entries in response["headers"].items() if name in kept
    }
    return response


def note_transfer_encoding(event, context):
    """Says, in a header of its own, which Transfer-Encoding the event showed."""
    response = event["Records"][0]["cf"]["response"]
    seen = response["headers"].get("transfer-encoding", [{"value": "none"}])
    response["headers"]["x-seen-transfer-encoding"] = [{"value": seen[0]["value"]}]
    return response
