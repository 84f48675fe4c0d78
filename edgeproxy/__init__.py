"""edgeproxy: a CloudFront + Lambda@Edge edge location on localhost."""

__version__ = "0.1.0"
