// Access tokens and DPoP proofs made by independent JavaScript libraries — panva's `jose`
// (tokens, keys, thumbprints) and `dpop` (RFC 9449 proofs) from npm — for test/interop/dpop.sh.
//
//   node dpop.mjs setup DIR                         issuer key + JWKS, client keys (ES256, Ed25519, PS256)
//   node dpop.mjs token DIR ALG                      an at+jwt bound to the client key ALG (cnf.jkt)
//   node dpop.mjs proof DIR ALG HTM HTU TOKEN [NONCE]  a proof by the client key ALG
import fs from 'node:fs'
import path from 'node:path'
import * as jose from 'jose'
import { generateProof } from 'dpop'

const [cmd, dir, ...args] = process.argv.slice(2)
const file = (name) => path.join(dir, name)
const clientAlgs = { ES256: 'ES256', Ed25519: 'Ed25519', PS256: 'PS256' }

async function pair(name, alg) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true })
  fs.writeFileSync(file(name + '.json'), JSON.stringify({ alg, priv: await jose.exportJWK(privateKey), pub: await jose.exportJWK(publicKey) }))
}

async function load(name) {
  const k = JSON.parse(fs.readFileSync(file(name + '.json')))
  return { alg: k.alg, pub: k.pub, privateKey: await jose.importJWK(k.priv, k.alg, { extractable: false }), publicKey: await jose.importJWK(k.pub, k.alg, { extractable: true }) }
}

switch (cmd) {
  case 'setup': {
    await pair('issuer', 'ES384')
    const issuer = JSON.parse(fs.readFileSync(file('issuer.json')))
    fs.writeFileSync(file('jwks.json'), JSON.stringify({ keys: [{ ...issuer.pub, kid: 'js-1', alg: 'ES384', use: 'sig' }] }))
    for (const alg of Object.values(clientAlgs)) await pair('client-' + alg, alg)
    break
  }
  case 'token': {
    const issuer = await load('issuer')
    const client = await load('client-' + args[0])
    const jkt = await jose.calculateJwkThumbprint(client.pub, 'sha256')
    const token = await new jose.SignJWT({ scope: 'read', client_id: 'js-app', cnf: { jkt } })
      .setProtectedHeader({ alg: 'ES384', typ: 'at+jwt', kid: 'js-1' })
      .setIssuer('https://js-idp.example').setAudience('bank').setSubject('js-user')
      .setIssuedAt().setExpirationTime('10m').setJti(crypto.randomUUID())
      .sign(issuer.privateKey)
    process.stdout.write(token)
    break
  }
  case 'proof': {
    const [alg, htm, htu, token, nonce] = args
    const client = await load('client-' + alg)
    process.stdout.write(await generateProof({ privateKey: client.privateKey, publicKey: client.publicKey }, htu, htm, nonce || undefined, token))
    break
  }
  default:
    throw new Error('unknown command ' + cmd)
}
