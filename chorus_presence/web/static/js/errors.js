// The portal's one error type for what the server refuses or the connection fails at.

import { NS, child, text } from "./xml.js";

/** A stanza error (RFC 6120 section 8.3) or a failure to connect or log in. */
export class XmppError extends Error {
  constructor(condition, message, type = "cancel") {
    super(message || condition);
    this.condition = condition;
    this.type = type;
  }

  static fromStanza(stanza) {
    const error = child(stanza, "error");
    if (!error) return new XmppError("undefined-condition");
    const condition = [...error.children].find(
      (node) => node.namespaceURI === NS.stanzas && node.localName !== "text",
    );
    const explanation = text(error, "text", NS.stanzas);
    const result = new XmppError(
      condition ? condition.localName : "undefined-condition",
      explanation,
      error.getAttribute("type") || "cancel",
    );
    result.explanation = explanation;
    result.appConditions = [...error.children]
      .filter((node) => node.namespaceURI !== NS.stanzas)
      .map((node) => `{${node.namespaceURI}}${node.localName}`);
    return result;
  }
}
