"""The Iris domain: config, the pool of Claude Code processes, sessions and records, jobs.

Imports no transport (grpc, fastapi, starlette, mcp); tests/test_layering.py keeps it so.
"""
