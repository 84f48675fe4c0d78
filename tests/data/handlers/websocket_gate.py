# viewer-request: a WebSocket handshake (it carries Sec-WebSocket-Key; Upgrade itself is a
# header functions never see) needs ?token=letmein, else the edge answers 401 itself.
def viewer_request(event, context):
    request = event["Records"][0]["cf"]["request"]
    if "sec-websocket-key" in request["headers"] and request["querystring"] != "token=letmein":
        return {
            "status": "401",
            "statusDescription": "Unauthorized",
            "headers": {"content-type": [{"key": "Content-Type", "value": "text/plain"}]},
            "body": "no token, no socket",
        }
    return request
