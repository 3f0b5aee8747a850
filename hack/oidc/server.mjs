// A small, real OpenID Connect provider for DevPlane's tests and local demo.
//
//   node hack/oidc/server.mjs hack/oidc/config.example.json
//   DEVPLANE_OIDC_CONFIG=/path/to/config.json node hack/oidc/server.mjs
//
// It is the `oidc-provider` npm package (a certified OpenID Provider implementation) with:
// - clients, users (password, email, name, groups) and the issuer read from one JSON file;
// - a plain HTML login form at /interaction/<uid> (no JavaScript, no external assets), so
//   a browser or `requests` can submit it; wrong passwords are refused;
// - no consent screen: the clients listed in the file are first-party (the hub), so the
//   grant is created at login for the scopes the client asked for;
// - a `groups` scope and claim, which the hub's GenericOAuthenticator reads for allowed and
//   admin groups; PKCE (S256) is accepted, and required when "requirePkce" is true.
// Everything binds to the host in the config (127.0.0.1 by default). On start it prints one
// line `ready <issuer>` on stdout, which the tests and the demo wait for. SIGHUP re-reads the
// users from the file (a group membership changed at the provider, as revocation tests need)
// and prints `reloaded users (<n>)`, n counting the reloads.
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Provider } from 'oidc-provider';

const configPath = process.argv[2] || process.env.DEVPLANE_OIDC_CONFIG;
if (!configPath) {
  console.error('usage: node hack/oidc/server.mjs <config.json> (or DEVPLANE_OIDC_CONFIG)');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const host = config.host || '127.0.0.1';
const port = Number(config.port || 0);
const users = new Map((config.users || []).map((u) => [u.username, u]));
let reloads = 0;
process.on('SIGHUP', () => {
  const fresh = JSON.parse(readFileSync(configPath, 'utf8'));
  users.clear();
  for (const u of fresh.users || []) users.set(u.username, u);
  reloads += 1;
  console.log(`reloaded users (${reloads})`);
});

// Signing keys live only in memory: tokens do not need to survive a restart of a test IdP.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'k1' };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function sameSecret(given, expected) {
  const a = Buffer.from(String(given));
  const b = Buffer.from(String(expected));
  return a.length === b.length && timingSafeEqual(a, b);
}

function loginPage(uid, error) {
  const message = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in</h1>${message}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label>Username <input name="username" autofocus required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function createProvider(issuer) {
  return new Provider(issuer, {
    clients: (config.clients || []).map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 3600, IdToken: 3600, AuthorizationCode: 60, RefreshToken: 86400 },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    // Put the scoped claims in the ID token as well, so a client can read them from either
    // the ID token or the userinfo endpoint.
    conformIdTokenClaims: false,
    pkce: { required: () => Boolean(config.requirePkce) },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const user = users.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: user.email,
            email_verified: true,
            name: user.name || sub,
            preferred_username: sub,
            groups: user.groups || [],
          };
        },
      };
    },
    // First-party clients only: grant the requested scopes at login instead of asking.
    async loadExistingGrant(ctx) {
      const grantId =
        ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
      await grant.save();
      return grant;
    },
  });
}

async function handleInteraction(provider, req, res) {
  const url = new URL(req.url, 'http://local');
  const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== match[1]) throw new Error('interaction mismatch');
  if (req.method === 'GET') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(loginPage(details.uid));
    return;
  }
  if (req.method !== 'POST' || !match[2]) {
    res.statusCode = 405;
    res.end();
    return;
  }
  const form = await readForm(req);
  const user = users.get(form.get('username') || '');
  if (!user || !sameSecret(form.get('password') || '', user.password)) {
    res.statusCode = 401;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(loginPage(details.uid, 'Invalid username or password.'));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: user.username } }, {
    mergeWithLastSubmission: false,
  });
}

const server = http.createServer();
server.listen(port, host, () => {
  const actualPort = server.address().port;
  const issuer = config.issuer || `http://${host}:${actualPort}`;
  const provider = createProvider(issuer);
  // Plain-HTTP loopback issuer: tell the provider it is not behind a TLS-terminating proxy.
  provider.proxy = false;
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/')) {
      handleInteraction(provider, req, res).catch((err) => {
        res.statusCode = 400;
        res.end(`interaction failed: ${err.message}`);
      });
      return;
    }
    callback(req, res);
  });
  console.log(`ready ${issuer}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
