// ts-echo-server.mjs: the peer of bench/run-stdio.sh, a minimal MCP server
// on the official TypeScript SDK with the same echo tool as the fixture
// plugin (tests/plugins/echo.c), so loadgen drives both the same way.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  StdioServerTransport,
} from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "ts-echo", version: "1.0.0" });

// Named like the fixture's tool; loadgen takes the name to call (-t), since
// plughost exposes it with a prefix.
server.registerTool(
  "echo",
  {
    description: "Returns the text argument.",
    inputSchema: { text: z.string() },
    annotations: { readOnlyHint: true },
  },
  async ({ text }) => ({ content: [{ type: "text", text }] }),
);

await server.connect(new StdioServerTransport());
