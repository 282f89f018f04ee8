"""Security tests: API fuzzing, stored XSS, secrets never leaking, route isolation and roles."""
