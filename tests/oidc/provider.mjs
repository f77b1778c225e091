// A real OpenID Provider for fathom's tests: oidc-provider (an OpenID-certified implementation)
// on 127.0.0.1, configured from a JSON file the Python fixture writes (tests/oidc/provider.py).
//
//   node provider.mjs CONFIG.json
//
// It prints "ready" once it listens. Each line "reload" on stdin re-reads the file and swaps in
// a new provider on the same port (new signing keys: the issuer's key rotation), then prints
// "reloaded". Test-only: the login page is oidc-provider's development page (any password).
//
// Config: issuer, port, jwks (private JWKs; the first of an algorithm signs), accounts (id ->
// claims such as tenant, groups, role), clients (oidc-provider client metadata), resources
// (resource indicator -> {scope}), accessTokenTTL (client id -> seconds, default 600).

import fs from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';

import Provider, { errors } from 'oidc-provider';

const configPath = process.argv[2];

function build() {
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  const accounts = config.accounts;
  const resources = config.resources;
  const resourceScope = (resource) => resources[resource]?.scope ?? 'fathom';

  const provider = new Provider(config.issuer, {
    clients: config.clients,
    jwks: config.jwks,
    cookies: { keys: ['fathom-test-cookie-key-not-a-secret'] },
    scopes: ['openid', 'offline_access', 'fathom'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
      fathom: ['tenant', 'groups', 'role'],
    },
    // Scope-based claims go into the ID token too (an API may be given ID tokens).
    conformIdTokenClaims: false,
    // Refresh tokens for every client allowed the grant, as Keycloak and others do (without
    // this, oidc-provider needs offline_access and prompt=consent).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    async findAccount(_ctx, sub) {
      const account = accounts[sub];
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
    async extraTokenClaims(_ctx, token) {
      const account = token.accountId && accounts[token.accountId];
      if (!account) return undefined;
      const claims = {};
      for (const name of ['tenant', 'groups', 'role', 'preferred_username']) {
        if (account[name] !== undefined) claims[name] = account[name];
      }
      return claims;
    },
    // First-party clients: no consent screen; the grant covers every scope and resource asked.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      const grant = grantId
        ? await ctx.oidc.provider.Grant.find(grantId)
        : new ctx.oidc.provider.Grant({
          clientId: ctx.oidc.client.clientId,
          accountId: ctx.oidc.session.accountId,
        });
      grant.addOIDCScope('openid profile email fathom offline_access');
      grant.addOIDCClaims(['tenant', 'groups', 'role', 'name', 'preferred_username', 'email']);
      const asked = ctx.oidc.params.resource;
      for (const resource of [].concat(asked ?? [], Object.keys(resources))) {
        if (resources[resource]) grant.addResourceScope(resource, resourceScope(resource));
      }
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: true },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? config.defaultResource,
        useGrantedResource: async () => true,
        async getResourceServerInfo(ctx, resource, client) {
          if (!resources[resource]) throw new errors.InvalidTarget();
          return {
            scope: resourceScope(resource),
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: config.accessTokenTTL?.[client.clientId] ?? 600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    clientBasedCORS: () => true,
    pkce: { required: () => true },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600,
      AuthorizationCode: 60,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  provider.on('server_error', (_ctx, error) => console.error('server_error', error));
  return { config, provider, handler: provider.callback() };
}

let current = build();
const server = http.createServer((req, res) => current.handler(req, res));
server.listen(current.config.port, '127.0.0.1', () => console.log('ready'));

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'reload') {
    current = build();
    console.log('reloaded');
  }
});
process.stdin.on('end', () => server.close(() => process.exit(0)));
