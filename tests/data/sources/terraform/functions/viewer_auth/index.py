# Lambda@Edge viewer-request function of the source fixtures: marks the request it let in
# (in the query string, which the API behavior's policies forward whole).
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    query = request["querystring"]
    request["querystring"] = f"{query}&auth=checked" if query else "auth=checked"
    return request
