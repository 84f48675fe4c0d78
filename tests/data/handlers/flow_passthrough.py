# A do-nothing handler for any stage: returns what it was given.
def handler(event, context):
    cf = event["Records"][0]["cf"]
    return cf.get("response", cf["request"])
