// A real OpenID Provider for keyless's tests: npm oidc-provider (panva's
// certified implementation) with the device flow (RFC 8628), DPoP (RFC
// 9449), resource indicators (RFC 8707) issuing JWT access tokens (RFC
// 9068, ES256), RS256 ID tokens, and test accounts with groups.
//
// It listens on 127.0.0.1 on a free port and prints one JSON line on
// stdout, {"issuer": "http://127.0.0.1:PORT"}, once it serves. It exits
// when stdin closes (the Go test that started it ended).
//
// Sign-in is programmatic: the interaction step signs in the account set
// by the last POST /test/login {"sub": "..."} (default "alice") and grants
// what was asked, with no page. The device pages themselves are
// oidc-provider's own (/device, with its xsrf form), driven over HTTP by
// the Go helper (idptest.go).
//
// Environment: IDPTEST_RESOURCE (default "urn:keyless"), the resource
// whose access tokens are JWTs; IDPTEST_TTL access/ID token lifetime in
// seconds (default 600); IDPTEST_CORS_ORIGINS, a comma-separated list of
// page origins allowed to call it from a browser (default none: the
// client has no redirect URIs for oidc-provider to derive them from);
// IDPTEST_DPOP=off turns DPoP off (the metadata then lists no
// dpop_signing_alg_values_supported and tokens are Bearer).
import http from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const resource = process.env.IDPTEST_RESOURCE || 'urn:keyless';
const ttl = Number(process.env.IDPTEST_TTL || 600);
const corsOrigins = (process.env.IDPTEST_CORS_ORIGINS || '').split(',').filter(Boolean);
const dpop = process.env.IDPTEST_DPOP !== 'off';

// Accounts: sub -> claims. Two accounts share nothing with keyless's own
// users except, on purpose, the name alice.
const accounts = {
  alice: { email: 'alice@example.com', email_verified: true, groups: ['ops-team', 'staff'] },
  bob: { email: 'bob@example.com', email_verified: false, groups: ['staff'] },
};
let nextLogin = 'alice';

async function privateJWK(alg, kid, opts) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...opts });
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'demo-app',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [await privateJWK('RS256', 'rs-1', { modulusLength: 2048 }), await privateJWK('ES256', 'es-1')] },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    dPoP: { enabled: dpop },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return {
          scope: 'orders:read orders:write',
          audience: resource,
          accessTokenTTL: ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  conformIdTokenClaims: false, // the ID token carries the claims asked for
  scopes: ['openid', 'email', 'groups', 'offline_access'],
  ttl: { IdToken: ttl, AccessToken: ttl, DeviceCode: 600, Interaction: 600, Session: 600, Grant: 600 },
  // Access tokens carry the groups and email_verified too, as Keycloak's
  // and Okta's can be configured to.
  extraTokenClaims: (ctx, token) => {
    const a = accounts[token.accountId];
    return a ? { groups: a.groups, email_verified: a.email_verified } : undefined;
  },
  findAccount: (ctx, sub) => {
    const a = accounts[sub];
    if (!a) return undefined;
    return { accountId: sub, claims: () => ({ sub, ...a }) };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  clientBasedCORS: (ctx, origin) => corsOrigins.includes(origin),
  renderError: (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// Programmatic sign-in and consent.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/test/login') {
    const chunks = [];
    for await (const c of ctx.req) chunks.push(c);
    const { sub } = JSON.parse(Buffer.concat(chunks).toString() || '{}');
    if (!accounts[sub]) ctx.throw(400, 'unknown account');
    nextLogin = sub;
    ctx.status = 204;
    return;
  }
  if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { params } = details;
    const grant = new provider.Grant({ accountId: nextLogin, clientId: params.client_id });
    grant.addOIDCScope(params.scope);
    grant.addResourceScope(resource, 'orders:read orders:write');
    const grantId = await grant.save();
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, {
      login: { accountId: nextLogin },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    return;
  }
  await next();
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
