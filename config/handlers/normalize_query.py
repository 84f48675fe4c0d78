"""Lambda@Edge, viewer-request: normalise the query string to improve the cache hit ratio.

As the Developer Guide's "Example: Normalizing query string parameters to improve the cache
hit ratio" (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
lambda-examples.html): parameter names and values are lower-cased and the names put in
alphabetical order, so ?B=2&a=1 and ?a=1&b=2 are one cache key. Unlike the guide's Python
version (which keeps the first value of a repeated name and drops empty ones) it keeps
every value, as its Node.js twin (handlers/node/normalize_query) and Node's querystring do.
"""

from urllib.parse import parse_qsl, quote, urlencode


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    print("Query String: ", request["querystring"])

    params = parse_qsl(request["querystring"].lower(), keep_blank_values=True)
    # A stable sort by name: the values of a repeated name keep their order.
    ordered = sorted(params, key=lambda pair: pair[0])
    # %20 for a space and these left as they are, as Node's querystring.stringify writes them
    request["querystring"] = urlencode(ordered, quote_via=quote, safe="!'()*")
    return request
