"""Lambda@Edge no-op function for the benchmark: what calling a function costs by itself.

One function for viewer-request and viewer-response (Lambda's form names one ``handler``): it
hands back the response when the event has one, else the request, untouched, so the edge still
builds each event, calls the function and validates the result. The module-spec rows
(``index.py:handler`` with ``isolation: inline | thread | process``) and the Lambda-form row
(``handler: index.handler`` with ``code:`` this folder) run this same file.
"""


def handler(event, context):
    cf = event["Records"][0]["cf"]
    return cf["response"] if "response" in cf else cf["request"]
