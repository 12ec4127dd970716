// The official MCP TypeScript SDK as a client of pyexec: connects to the URL given
// (node client.mjs http://127.0.0.1:8080/mcp) with StreamableHTTPClientTransport, lists the
// tools, calls run_python with the README's seed example and with a failing script, and prints
// one JSON object with what it got (tests/test_mcp.py checks it).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = process.argv[2];
if (!url) {
  console.error("usage: node client.mjs URL");
  process.exit(2);
}

const client = new Client({ name: "pyexec-test-client", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(url));
await client.connect(transport);

const out = {
  serverVersion: client.getServerVersion(),
  serverCapabilities: client.getServerCapabilities(),
  protocolVersion: transport.protocolVersion ?? null,
  sessionId: transport.sessionId ?? null,
};
out.tools = (await client.listTools()).tools;
out.seed = await client.callTool({
  name: "run_python",
  arguments: { script: 'def main():\n    print("calculating...")\n    return sum([1,2,3,4,5])' },
});
out.failing = await client.callTool({
  name: "run_python",
  arguments: { script: 'def main():\n    print("before")\n    return 1/0' },
});
await client.ping();
await client.close();
console.log(JSON.stringify(out));
