"""``dsql-migrate mcp``: an MCP server (stdio) that gives AI agents dsql-migrate's safe path.

:mod:`.service` holds what the tools do (no MCP import: testable and reusable);
:mod:`.server` registers them with the official ``mcp`` SDK. See docs/mcp.md.
"""
