"""``python -m mcp_adapter``: the MCP adapter over stdio (see ``mcp_adapter.cli``)."""

import sys

from .cli import main

sys.exit(main())
