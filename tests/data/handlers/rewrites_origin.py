"""origin-request: sends the request to localhost on the port in the origin's X-Port custom
header, whatever origin the distribution named."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    custom = request["origin"]["custom"]
    custom["domainName"] = "localhost"
    custom["port"] = int(custom["customHeaders"]["x-port"][0]["value"])
    custom["protocol"] = "http"
    request["headers"]["host"] = [{"key": "Host", "value": "localhost"}]
    return request
