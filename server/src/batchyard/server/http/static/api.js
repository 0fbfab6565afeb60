// A small Connect-protocol client for the console: JSON over fetch, unary and server
// streams. The session cookie carries the token; every call sends the CSRF header.

const HEADERS = { "content-type": "application/json", "x-batchyard-csrf": "1" };

export class ApiError extends Error {
  constructor(code, message, details) {
    super(message || code);
    this.code = code;
    this.details = details || [];
    const info = this.details.find((d) => d.type === "google.rpc.ErrorInfo");
    this.reason = info && info.debug ? info.debug.reason : "";
    const bad = this.details.find((d) => d.type === "google.rpc.BadRequest");
    this.fields = bad && bad.debug ? bad.debug.fieldViolations || [] : [];
  }
}

function errorOf(body, status) {
  if (body && body.code) return new ApiError(body.code, body.message, body.details);
  return new ApiError("unknown", `HTTP ${status}`);
}

export async function call(service, method, request = {}) {
  const response = await fetch(`/batchyard.v1.${service}/${method}`, {
    method: "POST",
    headers: HEADERS,
    body: JSON.stringify(request),
    credentials: "same-origin",
  });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = null;
  }
  if (!response.ok) throw errorOf(body, response.status);
  return body;
}

function envelope(request) {
  const data = new TextEncoder().encode(JSON.stringify(request));
  const out = new Uint8Array(5 + data.length);
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

// Calls onMessage for each message; resolves when the stream ends well, rejects with
// ApiError otherwise. Abort with `signal`.
export async function stream(service, method, request, onMessage, signal) {
  const response = await fetch(`/batchyard.v1.${service}/${method}`, {
    method: "POST",
    headers: { ...HEADERS, "content-type": "application/connect+json" },
    body: envelope(request),
    credentials: "same-origin",
    signal,
  });
  if (!response.ok) throw new ApiError("unavailable", `HTTP ${response.status}`);
  const reader = response.body.getReader();
  let buffer = new Uint8Array(0);
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const joined = new Uint8Array(buffer.length + value.length);
    joined.set(buffer);
    joined.set(value, buffer.length);
    buffer = joined;
    while (buffer.length >= 5) {
      const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      const flags = view.getUint8(0);
      const size = view.getUint32(1);
      if (buffer.length < 5 + size) break;
      const frame = JSON.parse(decoder.decode(buffer.subarray(5, 5 + size)));
      buffer = buffer.slice(5 + size);
      if (flags & 2) {
        if (frame.error) throw errorOf(frame.error, 200);
        return;
      }
      onMessage(frame);
    }
  }
  throw new ApiError("unavailable", "the stream ended early");
}

export async function session() {
  const response = await fetch("/api/session", { credentials: "same-origin" });
  return response.ok ? response.json() : null;
}

export async function signIn(token) {
  const response = await fetch("/api/session", {
    method: "POST",
    headers: HEADERS,
    body: JSON.stringify({ token }),
    credentials: "same-origin",
  });
  return response.ok ? response.json() : null;
}

export async function signOut() {
  await fetch("/api/session", { method: "DELETE", headers: HEADERS, credentials: "same-origin" });
}
