// Logging in by SASL2 (XEP-0388): with the password by SCRAM, asking for a token to stay signed
// in (XEP-0484 FAST), or with that token by HT-SHA-256-NONE. SASL2 ends without a stream
// restart: the authenticated stream's features follow the success. Where the token is kept is
// signin.js's business.

import {
  MECHANISMS,
  Scram,
  TOKEN_MECHANISM,
  fromBase64,
  toBase64,
  tokenProofs,
  utf8,
} from "./scram.js";
import { child, children, text, x } from "./xml.js";
import { XmppError } from "./errors.js";

const SASL2 = "urn:xmpp:sasl:2";
const FAST = "urn:xmpp:fast:0";

const FAILURES = {
  "temporary-auth-failure": "Too many failed sign-ins: wait a moment, then try again.",
  "account-disabled": "This account is disabled.",
};

/**
 * Authenticates a stream whose `features` were just read, through `io` ({send, next,
 * unexpected} of the client). `login` is {username, agent, password} or {username, agent,
 * token}; `agent` is {id, software, device}, the client a token is issued to. With the
 * password a token is asked for. Resolves with the token the server issued ({token, expiry}),
 * or null, once the new features have been read.
 */
export async function authenticate(features, io, login) {
  const offered = child(features, "authentication", SASL2);
  if (!offered) {
    throw new XmppError("mechanism-too-weak", "The server does not offer SASL2 sign-in.");
  }
  const answer = login.token
    ? await withToken(offered, io, login)
    : await withPassword(offered, io, login);
  const next = await io.next();
  if (next.localName !== "features") throw io.unexpected(next);
  const issued = child(answer, "token", FAST);
  return issued ? { token: issued.getAttribute("token"), expiry: issued.getAttribute("expiry") } : null;
}

async function withPassword(offered, io, { username, password, agent }) {
  const names = children(offered, "mechanism", SASL2).map((node) => node.textContent.trim());
  const mechanism = Object.keys(MECHANISMS).find((name) => names.includes(name));
  if (!mechanism) {
    throw new XmppError("mechanism-too-weak", "The server offers no SCRAM mechanism.");
  }
  const scram = new Scram(mechanism, username, password);
  io.send(
    x(
      "authenticate",
      { xmlns: SASL2, mechanism },
      x("initial-response", {}, toBase64(utf8.encode(scram.first()))),
      userAgent(agent),
      x("request-token", { xmlns: FAST, mechanism: TOKEN_MECHANISM }),
    ),
  );
  let answer = await io.next();
  if (answer.localName === "challenge" && answer.namespaceURI === SASL2) {
    const final = await scram.final(utf8.decode(fromBase64(answer.textContent.trim())));
    io.send(x("response", { xmlns: SASL2 }, toBase64(utf8.encode(final))));
    answer = await io.next();
  }
  outcome(answer, io, "The address or password is not right.");
  const data = text(answer, "additional-data", SASL2);
  if (!data || !scram.verify(utf8.decode(fromBase64(data.trim())))) {
    // A server that cannot prove it knows the password may be an impostor.
    throw new XmppError("server-not-verified", "The server's identity could not be verified.");
  }
  return answer;
}

async function withToken(offered, io, { username, token, agent }) {
  const fast = child(child(offered, "inline", SASL2), "fast", FAST);
  const names = children(fast, "mechanism", FAST).map((node) => node.textContent.trim());
  if (!names.includes(TOKEN_MECHANISM)) {
    throw new XmppError("credentials-expired", "The server no longer accepts sign-in tokens.");
  }
  const proofs = await tokenProofs(token);
  const name = utf8.encode(username);
  const message = new Uint8Array(name.length + 1 + proofs.initiator.length);
  message.set(name);
  message.set(proofs.initiator, name.length + 1);
  io.send(
    x(
      "authenticate",
      { xmlns: SASL2, mechanism: TOKEN_MECHANISM },
      x("initial-response", {}, toBase64(message)),
      userAgent(agent),
      x("fast", { xmlns: FAST }),
    ),
  );
  const answer = await io.next();
  outcome(answer, io, "You have been signed out. Sign in again.");
  if (text(answer, "additional-data", SASL2)?.trim() !== proofs.responder) {
    throw new XmppError("server-not-verified", "The server's identity could not be verified.");
  }
  return answer;
}

function userAgent({ id, software, device }) {
  return x("user-agent", { id }, x("software", {}, software), x("device", {}, device));
}

/** Throws unless `answer` is a SASL2 success; `refused` is what a not-authorized means. */
function outcome(answer, io, refused) {
  if (answer.localName === "success" && answer.namespaceURI === SASL2) return;
  if (answer.localName !== "failure" || answer.namespaceURI !== SASL2) throw io.unexpected(answer);
  const reason = [...answer.children].find((node) => node.localName !== "text")?.localName;
  if (reason === "not-authorized" || reason === "credentials-expired") {
    throw new XmppError(reason, refused);
  }
  throw new XmppError(
    reason || "failure",
    FAILURES[reason] || `Sign-in failed (${reason || "unknown reason"}).`,
  );
}
