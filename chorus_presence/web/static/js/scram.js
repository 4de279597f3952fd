// SCRAM (RFC 5802, RFC 7677) with WebCrypto, so the password never crosses the wire; and the
// proofs of HT-SHA-256-NONE (draft-schmaus-kitten-sasl-ht), the mechanism of sign-in tokens.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const MECHANISMS = { "SCRAM-SHA-256": "SHA-256", "SCRAM-SHA-1": "SHA-1" };

export function toBase64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function nonce() {
  const bytes = new Uint8Array(24);
  crypto.getRandomValues(bytes);
  // Base64 never contains the comma that separates SCRAM attributes.
  return toBase64(bytes);
}

// RFC 5802 section 5.1: '=' and ',' cannot appear as they are in a SCRAM username.
function saslname(username) {
  return username.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

function attributes(message) {
  const result = {};
  for (const part of message.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) result[part.slice(0, at)] = part.slice(at + 1);
  }
  return result;
}

async function hmac(hash, keyBytes, data) {
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(data)));
}

async function digest(hash, bytes) {
  return new Uint8Array(await crypto.subtle.digest(hash, bytes));
}

async function saltedPassword(hash, password, salt, iterations) {
  const bits = hash === "SHA-1" ? 160 : 256;
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const derived = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash, salt, iterations },
    key,
    bits,
  );
  return new Uint8Array(derived);
}

/**
 * One SCRAM exchange. `first()` gives the client-first message; `final(serverFirst)` the
 * client-final one; `verify(serverFinal)` checks the server knew the password too.
 */
export class Scram {
  constructor(mechanism, username, password) {
    this.hash = MECHANISMS[mechanism];
    if (!this.hash) throw new Error(`Unsupported mechanism ${mechanism}`);
    this.username = username;
    // SASLprep (RFC 4013) is mostly NFKC; the rest only matters for exotic control characters.
    this.password = password.normalize("NFKC");
    this.clientNonce = nonce();
  }

  first() {
    this.firstBare = `n=${saslname(this.username)},r=${this.clientNonce}`;
    return `n,,${this.firstBare}`;
  }

  async final(serverFirst) {
    const { r, s, i } = attributes(serverFirst);
    const iterations = Number.parseInt(i, 10);
    if (!r || !s || !r.startsWith(this.clientNonce) || !(iterations > 0)) {
      throw new Error("The server's SCRAM challenge is malformed");
    }
    const withoutProof = `c=biws,r=${r}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const salted = await saltedPassword(this.hash, this.password, fromBase64(s), iterations);
    const clientKey = await hmac(this.hash, salted, "Client Key");
    const storedKey = await digest(this.hash, clientKey);
    const signature = await hmac(this.hash, storedKey, authMessage);
    const proof = clientKey.map((byte, index) => byte ^ signature[index]);
    const serverKey = await hmac(this.hash, salted, "Server Key");
    this.serverSignature = toBase64(await hmac(this.hash, serverKey, authMessage));
    return `${withoutProof},p=${toBase64(proof)}`;
  }

  verify(serverFinal) {
    return attributes(serverFinal).v === this.serverSignature;
  }
}

export const TOKEN_MECHANISM = "HT-SHA-256-NONE";

/**
 * The proofs for a sign-in token, without channel binding: `initiator` is what the portal
 * sends, `responder` what the server must answer to show it knew the token too.
 */
export async function tokenProofs(token) {
  const key = encoder.encode(token);
  return {
    initiator: await hmac("SHA-256", key, "Initiator"),
    responder: toBase64(await hmac("SHA-256", key, "Responder")),
  };
}

export const utf8 = {
  encode: (text) => encoder.encode(text),
  decode: (bytes) => decoder.decode(bytes),
};
