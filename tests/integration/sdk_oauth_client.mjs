// sdk_oauth_client.mjs: the official TypeScript SDK client against a
// protected department, authorising itself as the SDK does: its first
// request gets a 401, it reads the resource metadata the challenge names,
// then the authorization server's metadata, obtains a token with its
// ClientCredentialsProvider (the resource indicator taken from the
// metadata) and calls a tool with it. Prints one JSON object:
// {tools, result, requests} where requests lists what it asked the host
// and the provider, in order. Run by test_oidc.c as:
//   node sdk_oauth_client.mjs <department URL> <tool> <expected issuer>
// with PH_NODE_MODULES naming the node_modules holding the SDK. Any
// failure prints {"error": ...} and exits 1.
import { createRequire } from 'node:module';
import path from 'node:path';

const [url, tool, expectedIssuer] = process.argv.slice(2);
const modules = process.env.PH_NODE_MODULES;

function fail(message) {
  process.stdout.write(JSON.stringify({ error: String(message) }) + '\n');
  process.exit(1);
}

if (!url || !tool || !expectedIssuer)
  fail('usage: sdk_oauth_client.mjs URL TOOL ISSUER');
if (!modules) fail('PH_NODE_MODULES is not set');
const require = createRequire(path.join(path.resolve(modules), '..', 'x.js'));
const load = (name) => import(require.resolve(name));
const { Client } = await load('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = await load(
  '@modelcontextprotocol/sdk/client/streamableHttp.js'
);
const { ClientCredentialsProvider } = await load(
  '@modelcontextprotocol/sdk/client/auth-extensions.js'
);

// Every request the SDK makes, with the status it got.
const requests = [];
const traced = async (input, init) => {
  const response = await fetch(input, init);
  const target = new URL(input instanceof Request ? input.url : input);
  requests.push(`${init?.method ?? 'GET'} ${target.pathname} ${response.status}`);
  return response;
};

const authProvider = new ClientCredentialsProvider({
  clientId: 'plughost-tests',
  clientSecret: 'plughost-tests-secret',
  scope: 'read:sales',
  // The credentials go only to this authorization server, whatever the
  // resource metadata names.
  expectedIssuer,
});
const client = new Client({ name: 'plughost-oauth-test', version: '1.0.0' });
try {
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      authProvider,
      fetch: traced,
    })
  );
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const result = await client.callTool({ name: tool, arguments: {} });
  await client.close();
  process.stdout.write(JSON.stringify({ tools, result, requests }) + '\n');
} catch (e) {
  fail(`${e.stack ?? e} after ${JSON.stringify(requests)}`);
}
