# Semgrep test cases for python/injection.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
import os
import pickle
import shlex
import subprocess
import tarfile
import urllib.request

import requests
import yaml
from django.http import HttpResponse, HttpResponseRedirect
from fastapi import FastAPI
from flask import Flask, make_response, redirect, request, send_file, url_for
from markupsafe import escape

app = Flask(__name__)
api = FastAPI()


@app.route("/calc")
def calc():
    expression = request.args.get("expr", "0")
    # ruleid: ox.python.eval
    result = eval(expression)
    # ok: ox.python.eval
    eval("1 + 2")
    number = int(request.args["n"])
    # ok: ox.python.eval
    eval(number)
    return {"result": result}


def ping(host):
    # ruleid: ox.python.os-command
    subprocess.run(f"ping -c 1 {host}", shell=True, capture_output=True)
    # ruleid: ox.python.os-command
    os.system("nslookup " + host)
    # ruleid: ox.python.os-command
    subprocess.run(["sh", "-c", "dig " + host])
    # ok: ox.python.os-command
    subprocess.run(["ping", "-c", "1", host])
    # ok: ox.python.os-command
    subprocess.run("uptime", shell=True)
    # ok: ox.python.os-command
    os.system("nslookup " + shlex.quote(host))


def diag():
    target = os.environ.get("TARGET")
    # ruleid: ox.python.os-command
    os.popen("traceroute %s" % target)
    fixed = "localhost"
    # ok: ox.python.os-command
    os.system("ping " + fixed)


def orders(cur, customer, sort):
    # ruleid: ox.python.sql-string
    cur.execute("SELECT * FROM orders WHERE customer = '%s'" % customer)
    # ruleid: ox.python.sql-string
    cur.execute(f"SELECT * FROM orders ORDER BY {sort}")
    # ruleid: ox.python.sql-string
    cur.execute("SELECT * FROM orders WHERE customer = '" + customer + "'")
    query = "DELETE FROM orders WHERE id = %s" % customer
    # ruleid: ox.python.sql-string
    cur.execute(query)
    # ok: ox.python.sql-string
    cur.execute("SELECT * FROM orders WHERE customer = %s", (customer,))
    # ok: ox.python.sql-string
    cur.execute(f"SET threads = {sort}")
    limit = int(sort)
    # ok: ox.python.sql-string
    cur.execute(f"SELECT * FROM orders LIMIT {limit}")


@app.route("/search", methods=["POST"])
def search_view():
    name = request.form["name"]
    sql = f"SELECT id FROM users WHERE name = '{name}'"
    con = get_connection()
    # ruleid: ox.python.sql-string
    con.cursor().execute(sql)
    bar = "constant"
    # ok: ox.python.sql-string
    con.cursor().execute(f"SELECT id FROM users WHERE name = '{bar}'")


def sessions(blob, raw, fh):
    # ruleid: ox.python.pickle
    pickle.loads(blob)
    # ruleid: ox.python.yaml-load
    yaml.load(raw, Loader=yaml.Loader)
    # ruleid: ox.python.yaml-load
    yaml.unsafe_load(raw)
    # ok: ox.python.yaml-load
    yaml.load(raw, Loader=yaml.SafeLoader)
    # ok: ox.python.yaml-load
    yaml.safe_load(fh)


def builtin_state():
    # ok: ox.python.pickle
    return pickle.loads(b"\x80\x04K\x01.")


def round_trip(fh, YAML):
    yaml = YAML(typ="rt")
    # ok: ox.python.yaml-load
    return yaml.load(fh)


@app.route("/download")
def download():
    name = request.args.get("name")
    # ruleid: ox.python.path-traversal
    with open(os.path.join("/srv/files", name)) as handle:
        handle.read()
    # ruleid: ox.python.path-traversal
    send_file(f"/srv/files/{name}")
    # ok: ox.python.path-traversal
    send_file(os.path.join("/srv/files", os.path.basename(name)))
    # ok: ox.python.path-traversal
    open("/srv/files/index.txt")
    return "sent"


@app.route("/login")
def login_done():
    target = request.args.get("next")
    if target == "home":
        # ok: ox.python.open-redirect
        return redirect(url_for("home"))
    # ok: ox.python.open-redirect
    redirect("/profile/" + target)
    # ruleid: ox.python.open-redirect
    return redirect(target)


def django_next(req):
    # ruleid: ox.python.open-redirect
    return HttpResponseRedirect(req.GET["next"])


@api.get("/preview")
def preview(url: str):
    # ruleid: ox.python.ssrf
    body = requests.get(url, timeout=5).text
    # ok: ox.python.ssrf
    requests.get("https://api.example.com/items/" + url, timeout=5)
    return body


async def fetch_avatar(request):
    data = await request.json()
    # ruleid: ox.python.ssrf
    return urllib.request.urlopen(data["avatar"]).read()


@app.route("/hello")
def hello():
    name = request.args.get("name", "")
    # ok: ox.python.xss
    make_response(f"<p>Hello {escape(name)}</p>")
    # ruleid: ox.python.xss
    return f"<p>Hello {name}</p>"


def django_hello(req):
    # ruleid: ox.python.xss
    return HttpResponse("<h1>" + req.GET.get("name") + "</h1>")


def unpack(upload_path, target):
    with tarfile.open(upload_path) as archive:
        # ruleid: ox.python.archive-extraction
        archive.extractall(target)
    with tarfile.open(upload_path) as archive:
        # ok: ox.python.archive-extraction
        archive.extractall(target, filter="data")


# Constant conditions semgrep evaluates (constant folding and propagation): the dead branch reaches nothing.
@app.route("/dead-branch")
def dead_branch():
    param = request.args.get("cmd", "")
    limit = 86
    if 7 * 42 - limit > 200:
        command = "uptime"
    else:
        command = param
    # ok: ox.python.os-command
    os.system(command)
    chosen = "uptime" if 7 * 18 + limit > 200 else param
    # ok: ox.python.os-command
    os.system(chosen)
    live = "uptime" if 7 * 18 + limit < 200 else param
    # ruleid: ox.python.os-command
    os.system(live)
    if param:
        maybe = "uptime"
    else:
        maybe = param
    # ruleid: ox.python.os-command
    os.system(maybe)


@app.route("/literal")
def literal():
    text = request.form.get("text", "")
    if not text.startswith("'") or not text.endswith("'") or "'" in text[1:-1]:
        return "Only a quoted string literal is accepted."
    # ok: ox.python.eval
    return eval(text)


@app.route("/literal-unchecked")
def literal_unchecked():
    text = request.form.get("text", "")
    if not text.startswith("'"):
        return "no"
    # ruleid: ox.python.eval
    return eval(text)


@app.route("/argv")
def argv():
    host = request.args.get("host", "")
    args = []
    if os.name == "nt":
        args.append("cmd.exe")
        args.append("/c")
    else:
        args.append("sh")
        args.append("-c")
    # ruleid: ox.python.os-command
    args.append(f"ping {host}")
    subprocess.run(args, capture_output=True)
    plain = ["ping"]
    # ok: ox.python.os-command
    plain.append(host)
    subprocess.run(plain)


@app.route("/settings")
def settings():
    import configparser

    conf = configparser.ConfigParser()
    conf.add_section("s")
    conf.set("s", "fixed", "uptime")
    conf.set("s", "user", request.args.get("cmd", ""))
    safe = conf.get("s", "fixed")
    # ok: ox.python.os-command
    os.system(safe)
    unsafe = conf.get("s", "user")
    # ruleid: ox.python.os-command
    os.system(unsafe)


def parse_form(req):
    return req.form


@app.route("/wrapped")
def wrapped_request():
    form = parse_form(request)
    # ruleid: ox.python.os-command
    os.system(form.get("cmd"))


@app.route("/files")
def files():
    import pathlib

    name = request.args.get("name", "")
    base = pathlib.Path("/srv/files")
    probe = base / name
    # ruleid: ox.python.path-traversal
    if probe.exists():
        return "exists"
    # ruleid: ox.python.path-traversal
    if os.path.exists(f"/srv/files/{name}"):
        return "exists"
    resolved = (base / name).resolve()
    if not str(resolved).startswith(str(base)):
        return "Invalid path"
    # ok: ox.python.path-traversal
    return resolved.read_text()


@app.route("/files-dots")
def files_dots():
    name = request.args.get("name", "")
    if "../" in name:
        return "Invalid name"
    # ok: ox.python.path-traversal
    return open(f"/srv/files/{name}").read()


@app.route("/files-dots-logged")
def files_dots_logged():
    name = request.args.get("name", "")
    if "../" in name:
        print("suspicious name")
    # ruleid: ox.python.path-traversal
    return open(f"/srv/files/{name}").read()


@app.route("/go")
def go():
    import urllib.parse

    target = request.args.get("next", "/")
    parsed = urllib.parse.urlparse(target)
    if parsed.netloc not in ["example.com"] or parsed.scheme != "https":
        return "Invalid URL"
    # ok: ox.python.open-redirect
    return redirect(target)


@app.route("/go-unchecked")
def go_unchecked():
    import urllib.parse

    target = request.args.get("next", "/")
    parsed = urllib.parse.urlparse(target)
    if parsed.netloc not in ["example.com"]:
        print("leaving the site")
    # ruleid: ox.python.open-redirect
    return redirect(target)


@app.route("/greet")
def greet():
    name = request.args.get("name", "")
    # ruleid: ox.python.xss
    return "<p>Hello {0}</p>".format(name)


@app.route("/header")
def header():
    name = request.args.get("name", "")
    response = make_response(("See the header.", {"X-Name": name}))
    # ok: ox.python.xss
    return response
