"""Function b's own helper: a module of the same name sits beside function a."""

WHO = "b"
