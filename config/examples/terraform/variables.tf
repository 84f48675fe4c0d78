variable "environment" {
  type        = string
  description = "Deployment stage: names resources and is the API origin's path."
  default     = "dev"
}

variable "api_domain" {
  type    = string
  default = "api.example.com"
}

variable "bucket" {
  type    = string
  default = "example-site-dev"
}
