// sdk_client.mjs: drives build/plughost with the official TypeScript SDK
// client over stdio and prints what it saw as one JSON object on stdout.
// Run by test_sdk_client.c as:
//   node sdk_client.mjs <plughost binary> <config> <working directory>
// with PH_NODE_MODULES naming the node_modules holding
// @modelcontextprotocol/sdk. Any failure prints {"error": ...} and exits 1.
import { createRequire } from 'node:module';
import path from 'node:path';

const [binary, config, cwd] = process.argv.slice(2);
const modules = process.env.PH_NODE_MODULES;

function fail(message) {
  process.stdout.write(JSON.stringify({ error: String(message) }) + '\n');
  process.exit(1);
}

if (!binary || !config || !cwd) fail('usage: sdk_client.mjs BINARY CONFIG CWD');
if (!modules) fail('PH_NODE_MODULES is not set');

// The SDK lives outside this file's tree, so resolve it from PH_NODE_MODULES
// the way a script sitting next to that directory would.
const require = createRequire(path.join(path.resolve(modules), '..', 'x.js'));
let Client, StdioClientTransport;
try {
  ({ Client } = require('@modelcontextprotocol/sdk/client/index.js'));
  ({ StdioClientTransport } = require(
    '@modelcontextprotocol/sdk/client/stdio.js'
  ));
} catch (e) {
  fail(`cannot load @modelcontextprotocol/sdk from ${modules}: ${e.message}`);
}

const transport = new StdioClientTransport({
  command: binary,
  args: ['--config', config, '--stdio'],
  cwd,
  stderr: 'ignore',
});
const client = new Client({ name: 'plughost-sdk-test', version: '1.0.0' });
const out = {};
const progress = [];

try {
  await client.connect(transport);
  out.serverVersion = client.getServerVersion();
  out.capabilities = client.getServerCapabilities();
  out.tools = (await client.listTools()).tools.map((t) => t.name);
  out.echo = await client.callTool({
    name: 'ok_echo',
    arguments: { text: 'hello from the SDK' },
  });
  // ok_add has an outputSchema: the SDK checks structuredContent against it.
  out.add = await client.callTool({
    name: 'ok_add',
    arguments: { a: 2, b: 3 },
  });
  out.invalid = await client.callTool({
    name: 'ok_echo',
    arguments: { text: 5 },
  });
  out.progress = await client.callTool(
    { name: 'ok_progress', arguments: {} },
    undefined,
    { onprogress: (p) => progress.push(p) },
  );
  out.progressNotes = progress;
  out.resources = (await client.listResources()).resources.map((r) => r.uri);
  out.templates = (await client.listResourceTemplates()).resourceTemplates.map(
    (t) => t.uriTemplate,
  );
  out.hello = await client.readResource({ uri: 'ok://hello' });
  out.item = await client.readResource({ uri: 'ok://items/7' });
  out.prompts = (await client.listPrompts()).prompts.map((p) => p.name);
  out.prompt = await client.getPrompt({
    name: 'ok_greet',
    arguments: { name: 'Ada' },
  });
  out.completion = await client.complete({
    ref: { type: 'ref/prompt', name: 'ok_greet' },
    argument: { name: 'name', value: 'al' },
  });
  try {
    await client.callTool({ name: 'ok_nope', arguments: {} });
    out.unknownTool = 'no error';
  } catch (e) {
    out.unknownTool = { code: e.code, message: e.message };
  }
  try {
    await client.readResource({ uri: 'ok://nope' });
    out.unknownResource = 'no error';
  } catch (e) {
    out.unknownResource = { code: e.code, message: e.message };
  }
  await client.ping();
  await client.close();
} catch (e) {
  fail(e && e.stack ? e.stack : e);
}
process.stdout.write(JSON.stringify(out) + '\n');
