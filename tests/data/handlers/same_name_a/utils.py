"""Function a's own helper: a module of the same name sits beside function b."""

WHO = "a"
