// ts-http-echo-server.mjs: the peer of bench/run-http.sh, the official
// TypeScript SDK's Streamable HTTP server with the same echo tool as the
// fixture plugin (tests/plugins/echo.c), sessions on. It follows the SDK's
// own stateful example: one transport and one McpServer per session, found
// by Mcp-Session-Id; an initialize without one mints a new session.
//
// Usage: node ts-http-echo-server.mjs PORT [json|sse]
//   json: enableJsonResponse (answers as application/json, like plughost
//   does for a call without notifications); sse (the SDK's default): every
//   POST is answered with a text/event-stream in chunked encoding.
import { randomUUID } from "node:crypto";
import http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  StreamableHTTPServerTransport,
} from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

const port = Number(process.argv[2] ?? 3000);
const enableJsonResponse = (process.argv[3] ?? "json") === "json";
const transports = new Map();

function newServer() {
  const server = new McpServer({ name: "ts-http-echo", version: "1.0.0" });

  server.registerTool(
    "echo",
    {
      description: "Returns the text argument.",
      inputSchema: { text: z.string() },
      annotations: { readOnlyHint: true },
    },
    async ({ text }) => ({ content: [{ type: "text", text }] }),
  );
  return server;
}

function reject(res, status, message) {
  res.writeHead(status, { "Content-Type": "application/json" }).end(
    JSON.stringify({
      jsonrpc: "2.0",
      error: { code: -32000, message },
      id: null,
    }),
  );
}

async function readJson(req) {
  const chunks = [];

  for await (const chunk of req) {
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function handle(req, res) {
  if (req.url !== "/mcp") {
    reject(res, 404, "Not Found");
    return;
  }
  const body = req.method === "POST" ? await readJson(req) : undefined;
  const sid = req.headers["mcp-session-id"];
  let transport = sid === undefined ? undefined : transports.get(sid);

  if (transport === undefined) {
    if (sid !== undefined) {
      reject(res, 404, "Session not found");
      return;
    }
    if (req.method !== "POST" || !isInitializeRequest(body)) {
      reject(res, 400, "Bad Request: no valid session ID provided");
      return;
    }
    const fresh = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse,
      onsessioninitialized: (id) => {
        transports.set(id, fresh);
      },
    });
    fresh.onclose = () => {
      if (fresh.sessionId !== undefined) {
        transports.delete(fresh.sessionId);
      }
    };
    await newServer().connect(fresh);
    transport = fresh;
  }
  await transport.handleRequest(req, res, body);
}

http
  .createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) {
        reject(res, 500, String(err));
      }
    });
  })
  .listen(port, "127.0.0.1");
