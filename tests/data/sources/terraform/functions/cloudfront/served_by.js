// CloudFront Function (viewer-response) of the Terraform fixture: says the site's stage.
function handler(event) {
    var response = event.response;
    response.headers['x-served-by'] = { value: 'cloudfront-function' };
    return response;
}
