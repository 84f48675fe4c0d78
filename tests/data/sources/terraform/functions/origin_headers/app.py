# Lambda@Edge origin-response function of the Terraform fixture: marks what it saw.
def on_response(event, context):
    response = event["Records"][0]["cf"]["response"]
    config = event["Records"][0]["cf"]["config"]
    response["headers"]["x-origin-response"] = [
        {"key": "X-Origin-Response", "value": config["distributionId"]}
    ]
    return response
