# A site distribution as a team keeps it in Terraform: an S3 bucket for the pages, an API
# behind /api/*, policies, a Lambda@Edge function built with archive_file and a CloudFront
# Function.
#   edgeproxy serve --config config/examples/terraform --config config/examples/edge.yaml

provider "aws" {
  region = "us-east-1"
}

locals {
  prefix = "example-${var.environment}"
}

resource "aws_s3_bucket" "site" {
  bucket = var.bucket
}

data "aws_cloudfront_cache_policy" "optimized" {
  name = "Managed-CachingOptimized"
}

resource "aws_cloudfront_cache_policy" "api" {
  name        = "${local.prefix}-api"
  default_ttl = 30
  max_ttl     = 300
  min_ttl     = 0
  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "none"
    }
    query_strings_config {
      query_string_behavior = "all"
    }
  }
}

resource "aws_cloudfront_origin_request_policy" "api" {
  name = "${local.prefix}-api"
  cookies_config {
    cookie_behavior = "none"
  }
  headers_config {
    header_behavior = "whitelist"
    headers {
      items = ["X-Request-Id"]
    }
  }
  query_strings_config {
    query_string_behavior = "all"
  }
}

resource "aws_cloudfront_response_headers_policy" "site" {
  name = "${local.prefix}-site"
  custom_headers_config {
    items {
      header   = "X-Environment"
      value    = var.environment
      override = true
    }
  }
}

data "archive_file" "request_id" {
  type        = "zip"
  source_dir  = "${path.module}/functions/request_id"
  output_path = "${path.module}/build/request_id.zip"
}

resource "aws_lambda_function" "request_id" {
  function_name    = "${local.prefix}-request-id"
  role             = "arn:aws:iam::123456789012:role/example-edge"
  handler          = "index.handler"
  runtime          = "python3.12"
  filename         = data.archive_file.request_id.output_path
  source_code_hash = data.archive_file.request_id.output_base64sha256
  publish          = true
}

resource "aws_cloudfront_function" "rewrite_index" {
  name    = "${local.prefix}-rewrite-index"
  runtime = "cloudfront-js-2.0"
  publish = true
  code    = file("${path.module}/functions/rewrite_index.js")
}

resource "aws_cloudfront_distribution" "site" {
  enabled             = true
  comment             = "${local.prefix} site"
  aliases             = ["www.example.com"]
  default_root_object = "index.html"

  origin {
    origin_id   = "site"
    domain_name = aws_s3_bucket.site.bucket_regional_domain_name
  }

  origin {
    origin_id   = "api"
    domain_name = var.api_domain
    origin_path = "/${var.environment}"
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  default_cache_behavior {
    target_origin_id           = "site"
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = data.aws_cloudfront_cache_policy.optimized.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.site.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.rewrite_index.arn
    }
  }

  ordered_cache_behavior {
    path_pattern             = "/api/*"
    target_origin_id         = "api"
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods           = ["GET", "HEAD"]
    cache_policy_id          = aws_cloudfront_cache_policy.api.id
    origin_request_policy_id = aws_cloudfront_origin_request_policy.api.id

    lambda_function_association {
      event_type = "viewer-request"
      lambda_arn = aws_lambda_function.request_id.qualified_arn
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }
}
