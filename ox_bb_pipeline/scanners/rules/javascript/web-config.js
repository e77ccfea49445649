// Semgrep test cases for web-config.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
"use strict";

const swig = require("swig");
const session = require("express-session");

if (process.env.NODE_ENV === "development") {
  // ruleid: ox.js.autoescape-disabled
  swig.setDefaults({ autoescape: false });
} else {
  // ok: ox.js.autoescape-disabled
  swig.setDefaults({ autoescape: true });
}

app.use(session({
  secret: process.env.SESSION_SECRET,
  // ruleid: ox.js.insecure-cookie
  cookie: { httpOnly: false, secure: false },
}));

function remember(res, token) {
  // ruleid: ox.js.insecure-cookie
  res.cookie("remember", token, { secure: false });
  // ok: ox.js.insecure-cookie
  res.cookie("session", token, { secure: true, httpOnly: true, sameSite: "lax" });
}
