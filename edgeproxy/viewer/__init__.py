"""What the edge decides about a viewer: the checks before anything runs, protocol policy,
CloudFront-* viewer headers, geo, certificates and their name constraints, the response
headers policy and CloudFront's error page."""
