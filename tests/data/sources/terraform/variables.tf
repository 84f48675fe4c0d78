variable "environment" {
  type        = string
  description = "Deployment stage; names resources and the origin path."
  default     = "staging"
}

variable "site_bucket" {
  type    = string
  default = "example-site-assets"
}

variable "api_domain" {
  type = string
  # no default: given with --var api_domain=... or terraform.tfvars
}

variable "static_paths" {
  type    = list(string)
  default = ["/img/*", "/css/*"]
}
