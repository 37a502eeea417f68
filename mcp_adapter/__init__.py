"""MCP adapter whose tools call gRPC (a later issue)."""
