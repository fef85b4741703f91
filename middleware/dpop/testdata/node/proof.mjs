// Prints {"proof":…,"jkt":…,"alg":…} for: node proof.mjs <alg> <htu> <htm> <access token> [nonce]
// The proof and the key's RFC 7638 thumbprint are made by panva's dpop package.
import { generateKeyPair, generateProof, calculateThumbprint } from 'dpop';

const [alg, htu, htm, accessToken, nonce] = process.argv.slice(2);
const keypair = await generateKeyPair(alg);
const proof = await generateProof(keypair, htu, htm, nonce || undefined, accessToken);
const jkt = await calculateThumbprint(keypair.publicKey);
const header = JSON.parse(Buffer.from(proof.split('.')[0], 'base64url').toString());
process.stdout.write(JSON.stringify({ proof, jkt, alg: header.alg }));
