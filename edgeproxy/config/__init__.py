"""The config: typed models of ``distribution:`` and ``edge:``, managed policies, the
Terraform schema, custom error pages and loading."""
