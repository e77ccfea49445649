// Semgrep test cases for injection.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
"use strict";

const vm = require("vm");
const fs = require("fs");
const path = require("path");
const _ = require("lodash");
const axios = require("axios");
const needle = require("needle");
const unzipper = require("unzipper");
const { exec, execFile } = require("child_process");
const serializer = require("node-serialize");
const notevil = require("notevil");
const staticEval = require("static-eval");
const esprima = require("esprima");
const { VM } = require("vm2");
var execAliased = require("child_process").exec;

function calc(req) {
  // ruleid: ox.js.eval
  const value = eval(req.query.expr);
  // ruleid: ox.js.eval
  const f = new Function("a", req.body.code);
  // ruleid: ox.js.eval
  vm.runInNewContext(req.body.script, {});
  // ok: ox.js.eval
  return eval("1 + 2") + value + f;
}

function profile(user) {
  const code = user.username.substring(2, user.username.length - 1);
  // ruleid: ox.js.eval
  return eval(code);
}

function quote(req, res) {
  const formula = req.body.formula || "";
  const context = { safeEval: notevil, formula, rate: 1.2 };
  vm.createContext(context);
  // ruleid: ox.js.sandbox-code-injection
  vm.runInContext("safeEval(formula)", context, { timeout: 1000 });
  // ruleid: ox.js.sandbox-code-injection
  vm.runInNewContext("eval(expr)", { expr: req.query.expr });
  const script = new vm.Script("result = evaluate(input)");
  // ruleid: ox.js.sandbox-code-injection
  script.runInNewContext({ evaluate: staticEval, input: req.body.input, result: null });
  const counter = new vm.Script("count = input.length");
  // ok: ox.js.eval, ox.js.sandbox-code-injection
  counter.runInNewContext({ input: req.body.input, count: 0 });
  // ok: ox.js.sandbox-code-injection
  vm.runInNewContext("total * rate", { total: req.body.total, rate: 1.2 });
  // ok: ox.js.sandbox-code-injection
  vm.runInContext("safeEval(formula)", vm.createContext({ safeEval: notevil, formula: "1 + 2" }));
  // ok: ox.js.sandbox-code-injection
  vm.runInNewContext("eval(expr)", { expr: Number(req.query.expr) });
  res.json(context.result);
}

function compile(req) {
  // ruleid: ox.js.sandbox-code-injection
  return vm.compileFunction(req.body.source, ["a", "b"]);
}

function templateValue(vars) {
  // ok: ox.js.sandbox-code-injection
  return vm.runInNewContext("first + ' ' + last", vars);
}

function lookup(req, res) {
  // ruleid: ox.js.os-command
  exec("nslookup " + req.query.domain, (err, stdout) => res.send(stdout));
  // ruleid: ox.js.os-command
  require("child_process").execSync(`ping -c 1 ${req.query.host}`);
  // ok: ox.js.os-command
  exec("uptime", (err, stdout) => res.send(stdout));
  // ok: ox.js.os-command
  execFile("nslookup", [req.query.domain]);
  // ok: ox.js.os-command
  /^a+$/.exec(req.query.domain);
}

function resize(req, res) {
  const url = req.body.imageUrl;
  // ruleid: ox.js.os-command
  execAliased("identify " + url, (err, out) => res.send(out));
}

async function accounts(db, email, id) {
  // ruleid: ox.js.sql-string
  await db.query("SELECT * FROM accounts WHERE email = '" + email + "'");
  // ruleid: ox.js.sql-string
  await db.query(`DELETE FROM accounts WHERE id = ${id}`);
  // ok: ox.js.sql-string
  await db.query("SELECT * FROM accounts WHERE email = $1", [email]);
  // ok: ox.js.sql-string
  await db.query(`SELECT * FROM accounts`);
}

function session(cookie) {
  // ruleid: ox.js.insecure-deserialization
  return serializer.unserialize(Buffer.from(cookie, "base64").toString());
}

function sessionAsJson(cookie) {
  // ok: ox.js.insecure-deserialization
  return JSON.parse(Buffer.from(cookie, "base64").toString());
}

function login(req, res) {
  // ruleid: ox.js.nosql-injection
  User.find({ username: req.body.username, password: req.body.password }, (err, users) => res.json(users));
  // ok: ox.js.nosql-injection
  User.findOne({ username: String(req.body.username) });
  // ruleid: ox.js.nosql-injection
  Orders.deleteMany(req.query);
  // ok: ox.js.nosql-injection
  Wallet.findOne({ where: { UserId: req.body.UserId } });
  // ok: ox.js.nosql-injection
  const item = cart.items.find((entry) => entry.id === req.body.id);
  return item;
}

function allocations(userId, threshold) {
  // ruleid: ox.js.nosql-where
  return db.collection("allocations").find({ $where: `this.userId == ${userId} && this.stocks > '${threshold}'` });
}

function constantWhere() {
  // ok: ox.js.nosql-where
  return db.collection("allocations").find({ $where: "this.stocks > 0" });
}

function learn(req, res) {
  // ruleid: ox.js.open-redirect
  return res.redirect(req.query.url);
}

function back(req, res) {
  // ok: ox.js.open-redirect
  res.redirect("/account/" + req.query.id);
  // ok: ox.js.open-redirect
  res.redirect("/login");
  // ok: ox.js.open-redirect
  res.redirect(process.env.BASE_PATH + "/profile");
}

function research(req, res) {
  const url = req.query.url + req.query.symbol;
  // ruleid: ox.js.ssrf
  needle.get(url, (error, response, body) => res.send(body));
  // ruleid: ox.js.ssrf
  axios.post(req.body.callback, { ok: true });
  // ok: ox.js.ssrf
  axios.get("https://quotes.example.com/symbol/" + req.query.symbol);
}

function download(req, res) {
  // ruleid: ox.js.path-traversal
  res.sendFile(path.join(__dirname, "files", req.params.name));
  // ruleid: ox.js.path-traversal
  fs.readFile("/srv/data/" + req.query.file, (err, data) => res.end(data));
  // ok: ox.js.path-traversal
  res.sendFile(path.join(__dirname, "files", path.basename(req.params.name)));
  // ok: ox.js.path-traversal
  fs.readFile("/srv/data/index.json", () => {});
}

function erasure(req, res) {
  // ruleid: ox.js.path-traversal
  res.render("result", { ...req.body, theme: "dark" });
  // ok: ox.js.path-traversal
  res.render("result", { name: req.body.name });
}

async function extract(buffer) {
  const directory = await unzipper.Open.buffer(buffer);
  for (const entry of directory.files) {
    const fileName = entry.path;
    // ruleid: ox.js.zip-slip
    entry.stream().pipe(fs.createWriteStream("uploads/" + fileName));
    // ok: ox.js.zip-slip
    entry.stream().pipe(fs.createWriteStream("uploads/" + path.basename(fileName)));
  }
}

function hello(req, res) {
  // ruleid: ox.js.xss
  res.send("<h1>Hello " + req.query.name + "</h1>");
  // ok: ox.js.xss
  res.send("<h1>Hello " + escapeHtml(req.query.name) + "</h1>");
}

function showSearch() {
  // ruleid: ox.js.xss
  document.getElementById("q").innerHTML = location.search;
  // ok: ox.js.xss
  document.getElementById("q").textContent = location.search;
}

function updatePrefs(req, res) {
  const prefs = {};
  // ruleid: ox.js.prototype-pollution
  _.merge(prefs, req.body);
  // ruleid: ox.js.prototype-pollution
  deepMerge(prefs, req.body.settings);
  // ok: ox.js.prototype-pollution
  _.merge(prefs, { theme: "dark" });
  res.json(prefs);
}

function calculator(req, res) {
  // ruleid: ox.js.sandbox-code-injection
  const sum = notevil(req.query.expression);
  // ruleid: ox.js.sandbox-code-injection
  const value = staticEval(esprima.parse(req.body.expr).body[0].expression, { x: 1 });
  // ruleid: ox.js.sandbox-code-injection
  const boxed = new VM({ timeout: 100 }).run(req.body.script);
  const box = new VM({ sandbox: { input: req.body.input } });
  // ok: ox.js.sandbox-code-injection
  const fixed = box.run("input.length");
  // ok: ox.js.sandbox-code-injection
  const two = notevil("1 + 1");
  res.json({ sum, value, boxed, fixed, two });
}

function attachment(req, res) {
  let file = req.params.file;
  if (/\.(txt|csv)$/.test(file)) {
    file = file.split("\0")[0];
    // ruleid: ox.js.file-check-before-truncate, ox.js.path-traversal
    fs.createReadStream(path.join("exports", file)).pipe(res);
  }
  if (file.endsWith(".txt")) {
    file = file.substring(0, 64);
    // ruleid: ox.js.file-check-before-truncate, ox.js.path-traversal
    fs.createReadStream(path.join("exports", file)).pipe(res);
  }
  if (file.endsWith(".csv")) {
    const target = path.join("exports", path.basename(file));
    // ok: ox.js.file-check-before-truncate
    fs.createReadStream(target).pipe(res);
  }
}
