"""viewer-request with include_body: rewrites a form POST (role=user -> role=admin) and sends
the new body as text, or as base64 when the request says X-Body-Encoding: base64."""

import base64
from urllib.parse import parse_qsl, urlencode


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    form = dict(parse_qsl(base64.b64decode(request["body"]["data"]).decode()))
    form["role"] = "admin"
    new_body = urlencode(form)
    wanted = request["headers"].get("x-body-encoding", [{"value": "text"}])[0]["value"]
    request["body"]["action"] = "replace"
    request["body"]["encoding"] = wanted
    if wanted == "base64":
        request["body"]["data"] = base64.b64encode(new_body.encode()).decode()
    else:
        request["body"]["data"] = new_body
    return request
