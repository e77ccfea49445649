# Semgrep test cases for python.yaml: `ruleid:` marks a line that must match, `ok:` one that must not.
import hashlib
import os
import pickle
import subprocess

import requests
import yaml
from Crypto.Cipher import AES, DES
from cryptography.hazmat.primitives.ciphers import algorithms, modes


def hash_password(password):
    # ruleid: ox.python.weak-password-hash, ox.python.weak-hash
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def store_key(user_secret):
    # ruleid: ox.python.weak-password-hash, ox.python.weak-hash
    return hashlib.sha1(user_secret).hexdigest()


def hash_password_properly(password, salt):
    # ok: ox.python.weak-password-hash
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 600_000)


def etag(body):
    # ruleid: ox.python.weak-hash
    weak = hashlib.md5(body).hexdigest()
    # ok: ox.python.weak-hash
    fast = hashlib.md5(body, usedforsecurity=False).hexdigest()
    # ok: ox.python.weak-hash
    return hashlib.sha256(body).hexdigest() + weak + fast


def ciphers(key):
    # ruleid: ox.python.weak-cipher
    DES.new(key, DES.MODE_CBC)
    # ruleid: ox.python.weak-cipher
    AES.new(key, AES.MODE_ECB)
    # ruleid: ox.python.weak-cipher
    modes.ECB()
    # ok: ox.python.weak-cipher
    AES.new(key, AES.MODE_GCM)
    # ok: ox.python.weak-cipher
    return algorithms.AES(key)


def fetch(url):
    # ruleid: ox.python.tls-verify-disabled
    requests.get(url, timeout=10, verify=False)
    # ok: ox.python.tls-verify-disabled
    return requests.get(url, timeout=10)


# ruleid: ox.python.hardcoded-credential
db_password = "X85fve2F97pL4!mvmmpO"
# ruleid: ox.python.hardcoded-credential
SLACK_BOT_TOKEN = "xoxb-000000000000-0000000000000-abcdefghijklmnop"
# ruleid: ox.python.hardcoded-credential
AWS_ACCESS_KEY_ID = "AKIAOZPGZDA55U3IW5QS"
# ok: ox.python.hardcoded-credential
TOKEN_URL = "https://auth.example.com/token"
# ok: ox.python.hardcoded-credential
PASSWORD_ENV = "DB_PASSWORD"
# ok: ox.python.hardcoded-credential
api_key = os.environ["API_KEY"]
# ok: ox.python.hardcoded-credential
password = ""
# ok: ox.python.hardcoded-credential
SECRETS = "SECRETS"
# ok: ox.python.hardcoded-credential
PRODUCT_NAMES = {"secrets": "Secrets"}
# ok: ox.python.hardcoded-credential
CATEGORY = {"secrets": "secrets", "password": "$REGISTRY_PASSWORD"}
# ok: ox.python.hardcoded-credential
RULE_OF = {"python-hardcoded-password": "ox.python.hardcoded-credential"}


def connect(psycopg2, oauth):
    # ok: ox.python.hardcoded-credential
    oauth.Session("client", token_endpoint_auth_method="client_secret_basic")
    # ruleid: ox.python.hardcoded-credential
    return psycopg2.connect(host="db", password="s3cr3t-Passw0rd")
