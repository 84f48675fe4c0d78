api_domain = "api.example.com"
