# Semgrep test cases for web-config.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
import aiohttp_jinja2
import jinja2
from django.views.decorators.csrf import csrf_exempt
from flask import Flask, make_response

app = Flask(__name__)
# ruleid: ox.python.csrf-disabled
app.config["WTF_CSRF_ENABLED"] = False
# ok: ox.python.csrf-disabled
app.config["WTF_CSRF_TIME_LIMIT"] = 3600
# ruleid: ox.python.insecure-cookie
SESSION_COOKIE_SECURE = False
# ok: ox.python.insecure-cookie
SESSION_COOKIE_HTTPONLY = True


def setup(app, loader):
    # ruleid: ox.python.autoescape-disabled
    aiohttp_jinja2.setup(app, loader=loader, autoescape=False)
    # ruleid: ox.python.autoescape-disabled
    env = jinja2.Environment(loader=loader)
    # ok: ox.python.autoescape-disabled
    safe = jinja2.Environment(loader=loader, autoescape=jinja2.select_autoescape())
    return env, safe


# ruleid: ox.python.csrf-disabled
@csrf_exempt
def webhook(request):
    return None


def remember(value):
    response = make_response("ok")
    # ruleid: ox.python.insecure-cookie
    response.set_cookie("remember", value, secure=False, httponly=True)
    # ok: ox.python.insecure-cookie
    response.set_cookie("session", value, secure=True, httponly=True)
    return response
