# Lambda@Edge origin-response function of the source fixtures: marks what it saw, the event's
# config (distributionId, distributionDomainName) included, so a test reads them as headers.
def on_response(event, context):
    response = event["Records"][0]["cf"]["response"]
    config = event["Records"][0]["cf"]["config"]
    response["headers"]["x-origin-response"] = [
        {"key": "X-Origin-Response", "value": config["distributionId"]}
    ]
    response["headers"]["x-distribution-domain"] = [
        {"key": "X-Distribution-Domain", "value": config["distributionDomainName"]}
    ]
    return response
