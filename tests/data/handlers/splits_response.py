"""Tries to split the viewer's response (or the origin's request) with the attack named by
the last segment of the uri (``/split/reason-crlf``), in whichever stage it is wired to:
CR, LF, NUL or another control character in statusDescription, a header name, key or value,
or the uri. Every attack carries ``injected`` so a test can look for it on the wire; the
last entries are not attacks but what must stay valid."""

INJECTED = "Set-Cookie: injected=1"
SECOND_RESPONSE = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"


def handler(event, context):
    cf = event["Records"][0]["cf"]
    request_stage = cf["config"]["eventType"] in ("viewer-request", "origin-request")
    message = cf["request"] if request_stage else cf["response"]
    attack = cf["request"]["uri"].rsplit("/", 1)[-1]
    return ATTACKS[attack](message, request_stage)


def _reason(message, request_stage, reason):
    if request_stage:  # a generated response
        return {"status": "200", "statusDescription": reason, "body": "generated"}
    message["statusDescription"] = reason
    return message


def _header(message, request_stage, name, entry):
    message["headers"][name] = [entry]
    return message


def _uri(message, request_stage, uri):
    message["uri"] = uri
    return message


ATTACKS = {
    "reason-crlf": lambda m, r: _reason(m, r, f"OK\r\n{INJECTED}"),
    "reason-second-response": lambda m, r: _reason(m, r, f"OK\r\n\r\n{SECOND_RESPONSE}"),
    "reason-lf": lambda m, r: _reason(m, r, f"OK\n{INJECTED}"),
    "reason-cr": lambda m, r: _reason(m, r, f"OK\r{INJECTED}"),
    "reason-nul": lambda m, r: _reason(m, r, "OK\x00injected"),
    "reason-escape": lambda m, r: _reason(m, r, "OK\x1b[31minjected"),
    "reason-delete": lambda m, r: _reason(m, r, "OK\x7finjected"),
    "value-crlf": lambda m, r: _header(m, r, "x-a", {"key": "X-A", "value": f"1\r\n{INJECTED}"}),
    "value-lf": lambda m, r: _header(m, r, "x-a", {"key": "X-A", "value": f"1\n{INJECTED}"}),
    "value-nul": lambda m, r: _header(m, r, "x-a", {"key": "X-A", "value": "1\x00injected"}),
    "name-crlf": lambda m, r: _header(m, r, f"x-a: 1\r\n{INJECTED}", {"value": "1"}),
    "key-crlf": lambda m, r: _header(m, r, "x-a", {"key": f"X-A: 1\r\n{INJECTED}", "value": "1"}),
    "uri-crlf": lambda m, r: _uri(m, r, "/a HTTP/1.1\r\nX-Injected: injected\r\nX-Pad: x"),
    "uri-lf": lambda m, r: _uri(m, r, "/a\nX-Injected: injected"),
    "uri-nul": lambda m, r: _uri(m, r, "/a\x00injected"),
    "uri-space": lambda m, r: _uri(m, r, "/a injected"),
    "uri-tab": lambda m, r: _uri(m, r, "/a\tinjected"),
    "uri-fragment": lambda m, r: _uri(m, r, "/a#injected"),
    "uri-relative": lambda m, r: _uri(m, r, "injected"),
    "uri-absolute": lambda m, r: _uri(m, r, "http://injected.example/a"),
    # not attacks: what stays valid
    "reason-fine": lambda m, r: _reason(m, r, "Tr\u00e8s\tbien"),
    "uri-encoded": lambda m, r: _uri(m, r, "/a%20b%23c"),
}
