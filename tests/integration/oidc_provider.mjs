// oidc_provider.mjs: a real identity provider for the tests: oidc-provider
// (OpenID Certified) on loopback, issuing JWT access tokens through the
// client credentials grant for the resource indicators it is given
// (RFC 8707), signed with one key kept in a file.
//   node oidc_provider.mjs --key FILE --log FILE [--port N] [--alg ES256]
//        --resource URL [--resource URL ...]
// The key file holds a private JWK; it is made (with a fresh kid) when
// missing, so a new file is a rotated key. Prints one line when listening,
// {"issuer": "http://127.0.0.1:N"}, and appends "jwks" to the log file for
// every request of the key set, so a test can count the host's fetches.
// The one client is plughost-tests / plughost-tests-secret (client
// secret basic or post), allowed the scopes read:sales and execute:tools.
// Needs PH_NODE_MODULES (the node_modules holding oidc-provider).
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const options = { port: '0', alg: 'ES256', resources: [] };
for (let i = 0; i < args.length; i += 2) {
  const [name, value] = [args[i], args[i + 1]];
  if (value === undefined) fail(`${name} needs a value`);
  if (name === '--key') options.key = value;
  else if (name === '--log') options.log = value;
  else if (name === '--port') options.port = value;
  else if (name === '--alg') options.alg = value;
  else if (name === '--resource') options.resources.push(value);
  else fail(`unknown option ${name}`);
}

function fail(message) {
  process.stderr.write(`oidc_provider: ${message}\n`);
  process.exit(2);
}

if (!options.key || !options.log || options.resources.length === 0)
  fail('usage: --key FILE --log FILE --resource URL [--port N] [--alg A]');
if (!['ES256', 'RS256'].includes(options.alg)) fail('--alg: ES256 or RS256');
const modules = process.env.PH_NODE_MODULES;
if (!modules) fail('PH_NODE_MODULES is not set');
const require = createRequire(path.join(path.resolve(modules), '..', 'x.js'));
const { default: Provider, errors } = await import(
  require.resolve('oidc-provider')
);

// The signing key: read, or made and written for the next start.
function signingKey() {
  if (fs.existsSync(options.key))
    return JSON.parse(fs.readFileSync(options.key, 'utf8'));
  const { privateKey } =
    options.alg === 'ES256'
      ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  jwk.kid = crypto.randomBytes(8).toString('hex');
  jwk.alg = options.alg;
  jwk.use = 'sig';
  fs.writeFileSync(options.key, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

const SCOPES = 'read:sales execute:tools';
const resources = new Set(options.resources);
const server = (await import('node:http')).createServer();
await new Promise((resolve) =>
  server.listen(Number(options.port), '127.0.0.1', resolve)
);
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'plughost-tests',
      client_secret: 'plughost-tests-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: options.alg,
      scope: SCOPES,
    },
  ],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  jwks: { keys: [signingKey()] },
  scopes: ['openid', ...SCOPES.split(' ')],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (!resources.has(resourceIndicator))
          throw new errors.InvalidTarget();
        return {
          scope: SCOPES,
          audience: resourceIndicator,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: options.alg } },
        };
      },
    },
  },
});
provider.use(async (ctx, next) => {
  if (ctx.path === '/jwks') fs.appendFileSync(options.log, 'jwks\n');
  await next();
});
server.on('request', provider.callback());
process.stdout.write(JSON.stringify({ issuer }) + '\n');
// Stopping is a test's key rotation: at once, idle connections or not.
for (const signal of ['SIGTERM', 'SIGINT'])
  process.on(signal, () => process.exit(0));
