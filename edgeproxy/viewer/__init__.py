"""What the edge decides about a viewer: the checks before anything runs, protocol policy,
CloudFront-* viewer headers, geo, certificates, the response headers policy, CloudFront's
error page and the access log."""
