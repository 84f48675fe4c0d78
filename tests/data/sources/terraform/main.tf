terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.0" }
  }
}

provider "aws" {
  region = "eu-west-1"
}

locals {
  name_prefix = "site-${var.environment}"
  api_origin  = "api-${var.environment}"
  s3_origin   = "assets"
  common_tags = {
    Project = "site"
    Stage   = var.environment
  }
}

resource "aws_s3_bucket" "assets" {
  bucket = var.site_bucket
  tags   = local.common_tags
}

data "aws_cloudfront_cache_policy" "optimized" {
  name = "Managed-CachingOptimized"
}

data "aws_acm_certificate" "site" {
  domain   = "www.example.com"
  statuses = ["ISSUED"]
}

resource "aws_cloudfront_cache_policy" "api" {
  name        = "${local.name_prefix}-api"
  comment     = "API responses keyed on the query string and Authorization"
  default_ttl = 60
  max_ttl     = 300
  min_ttl     = 0

  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "whitelist"
      headers {
        items = ["Authorization"]
      }
    }
    query_strings_config {
      query_string_behavior = "all"
    }
    enable_accept_encoding_gzip   = true
    enable_accept_encoding_brotli = true
  }
}

resource "aws_cloudfront_origin_request_policy" "api" {
  name = "${local.name_prefix}-api-forward"
  cookies_config {
    cookie_behavior = "none"
  }
  headers_config {
    header_behavior = "whitelist"
    headers {
      items = ["X-Request-Tag"]
    }
  }
  query_strings_config {
    query_string_behavior = "all"
  }
}

resource "aws_cloudfront_response_headers_policy" "security" {
  name = "${local.name_prefix}-security"
  custom_headers_config {
    items {
      header   = "X-Site-Stage"
      value    = var.environment
      override = true
    }
  }
  security_headers_config {
    frame_options {
      frame_option = "DENY"
      override     = true
    }
  }
}

data "archive_file" "viewer_auth" {
  type        = "zip"
  source_dir  = "${path.module}/functions/viewer_auth"
  output_path = "${path.module}/build/viewer_auth.zip"
}

data "archive_file" "origin_headers" {
  type        = "zip"
  source_dir  = "${path.module}/functions/origin_headers"
  output_path = "${path.module}/build/origin_headers.zip"
}

resource "aws_iam_role" "edge" {
  name = "${local.name_prefix}-edge"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Action    = "sts:AssumeRole"
      Effect    = "Allow"
      Principal = { Service = ["lambda.amazonaws.com", "edgelambda.amazonaws.com"] }
    }]
  })
}

resource "aws_lambda_function" "viewer_auth" {
  function_name    = "${local.name_prefix}-viewer-auth"
  role             = aws_iam_role.edge.arn
  handler          = "index.handler"
  runtime          = "python3.12"
  filename         = data.archive_file.viewer_auth.output_path
  source_code_hash = data.archive_file.viewer_auth.output_base64sha256
  publish          = true
}

resource "aws_lambda_function" "origin_headers" {
  function_name    = "${local.name_prefix}-origin-headers"
  role             = aws_iam_role.edge.arn
  handler          = "app.on_response"
  runtime          = "python3.12"
  filename         = data.archive_file.origin_headers.output_path
  source_code_hash = data.archive_file.origin_headers.output_base64sha256
  publish          = true
}

resource "aws_cloudfront_function" "served_by" {
  name    = "${local.name_prefix}-served-by"
  runtime = "cloudfront-js-2.0"
  comment = "Marks responses of the default behavior"
  publish = true
  code    = file("${path.module}/functions/cloudfront/served_by.js")
}

resource "aws_cloudfront_distribution" "site" {
  enabled             = true
  comment             = "${local.name_prefix} site"
  aliases             = ["www.example.com"]
  default_root_object = "index.html"
  price_class         = "PriceClass_100"

  origin {
    origin_id   = local.s3_origin
    domain_name = aws_s3_bucket.assets.bucket_regional_domain_name
    s3_origin_config {
      origin_access_identity = ""
    }
  }

  origin {
    origin_id   = local.api_origin
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
    target_origin_id           = local.s3_origin
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = data.aws_cloudfront_cache_policy.optimized.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
    compress                   = true

    function_association {
      event_type   = "viewer-response"
      function_arn = aws_cloudfront_function.served_by.arn
    }
  }

  ordered_cache_behavior {
    path_pattern             = "/api/*"
    target_origin_id         = local.api_origin
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods           = ["GET", "HEAD"]
    cache_policy_id          = aws_cloudfront_cache_policy.api.id
    origin_request_policy_id = aws_cloudfront_origin_request_policy.api.id

    lambda_function_association {
      event_type   = "viewer-request"
      lambda_arn   = aws_lambda_function.viewer_auth.qualified_arn
      include_body = false
    }

    lambda_function_association {
      event_type = "origin-response"
      lambda_arn = "${aws_lambda_function.origin_headers.arn}:${aws_lambda_function.origin_headers.version}"
    }
  }

  dynamic "ordered_cache_behavior" {
    for_each = var.static_paths
    content {
      path_pattern           = ordered_cache_behavior.value
      target_origin_id       = local.s3_origin
      viewer_protocol_policy = "allow-all"
      allowed_methods        = ["GET", "HEAD"]
      cached_methods         = ["GET", "HEAD"]
      cache_policy_id        = data.aws_cloudfront_cache_policy.optimized.id
    }
  }

  custom_error_response {
    error_code            = 404
    response_code         = 404
    response_page_path    = "/errors/404.html"
    error_caching_min_ttl = 30
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn      = data.aws_acm_certificate.site.arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv2021"
  }

  tags = local.common_tags
}
