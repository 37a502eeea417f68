"""REST gateway generated from the contract's google.api.http rules (a later issue)."""
