// Semgrep test cases for config.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
"use strict";

const crypto = require("crypto");
const https = require("https");

function hashPassword(password) {
  // ruleid: ox.js.weak-password-hash, ox.js.weak-hash
  return crypto.createHash("md5").update(password).digest("hex");
}

function etag(body) {
  // ruleid: ox.js.weak-hash
  const weak = crypto.createHash("sha1").update(body).digest("hex");
  // ok: ox.js.weak-hash
  return crypto.createHash("sha256").update(body).digest("hex") + weak;
}

function ciphers(key, iv) {
  // ruleid: ox.js.weak-cipher
  crypto.createCipheriv("des-ede3-cbc", key, iv);
  // ruleid: ox.js.weak-cipher
  crypto.createCipheriv("aes-128-ecb", key, null);
  // ruleid: ox.js.weak-cipher
  crypto.createCipher("aes192", key);
  // ok: ox.js.weak-cipher
  return crypto.createCipheriv("aes-256-gcm", key, iv);
}

// ruleid: ox.js.tls-verify-disabled
const partnerAgent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
// ok: ox.js.tls-verify-disabled
const strictAgent = new https.Agent({ keepAlive: true });

// ruleid: ox.js.hardcoded-credential
const SLACK_TOKEN = "xoxb-000000000000-0000000000000-abcdefghijklmnop";
// ruleid: ox.js.hardcoded-credential
const config = { password: "s3cr3t-Passw0rd", user: "app" };
// ok: ox.js.hardcoded-credential
const TOKEN_URL = "https://auth.example.com/token";
// ok: ox.js.hardcoded-credential
const apiKey = process.env.API_KEY;

module.exports = { calc, lookup, accounts, session, hashPassword, etag, ciphers, partnerAgent, strictAgent, SLACK_TOKEN, config, TOKEN_URL, apiKey };
