// Semgrep test cases for config.yaml in TypeScript.
import https from "https";
import { createHash } from "crypto";

export function hashPassword(password: string): string {
  // ruleid: ox.js.weak-password-hash, ox.js.weak-hash
  return createHash("md5").update(password).digest("hex");
}

export function checksum(body: string): string {
  // ok: ox.js.weak-password-hash
  return createHash("sha256").update(body).digest("hex");
}

// ruleid: ox.js.tls-verify-disabled
export const partnerAgent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });

// ruleid: ox.js.hardcoded-credential
export const GITHUB_TOKEN = "ghp_000000000000000000000000000000000000";
// ok: ox.js.hardcoded-credential
export const GITHUB_API = "https://api.github.com";
