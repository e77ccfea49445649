"""connections.yaml: typed, validated, secrets only as `${ENV}` references, every problem at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ox_bb_pipeline.config import (
    AccessTokenConnection,
    AppConnection,
    ConfigError,
    IdpConnection,
    TokenConnection,
    load_connections,
    state_dir,
)

OX_BB = str(Path(sys.executable).with_name("ox-bb"))

ALL_METHODS = """
connections:
  - name: cloud-app
    method: app
    client_id: consumer-key
    client_secret: ${APP_SECRET}
  - name: cloud-idp
    method: idp
    client_id: idp-key
    client_secret: ${IDP_SECRET}
    refresh_token: ${IDP_REFRESH}
    token_store: /var/lib/ox-bb/idp.json
  - name: cloud-token
    method: token
    email: alice@example.com
    api_token: ${API_TOKEN}
    workspaces: [acme-payments]
    include: ["acme-payments/CORE/*"]
    exclude: ["*/*/legacy-*"]
  - name: cloud-access-token
    method: access_token
    token: ${ACCESS_TOKEN}
    workspaces: [acme-payments]
    requests_per_hour: 500
    timeouts: {connect: 2, read: 10}
"""
SECRETS = {
    "APP_SECRET": "app-secret-value-1",
    "IDP_SECRET": "idp-secret-value-2",
    "IDP_REFRESH": "idp-refresh-value-3",
    "API_TOKEN": "ATATT3x-api-token-value-4",
    "ACCESS_TOKEN": "ATCTT3x-access-token-value-5",
}


def write(tmp_path: Path, text: str, name: str = "connections.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_file_with_all_four_methods_loads_typed_connections(tmp_path):
    config = load_connections(write(tmp_path, ALL_METHODS), environ=SECRETS)

    app, idp, token, access = config.connections
    assert config.names == ["cloud-app", "cloud-idp", "cloud-token", "cloud-access-token"]
    assert (type(app), type(idp), type(token), type(access)) == (
        AppConnection,
        IdpConnection,
        TokenConnection,
        AccessTokenConnection,
    )
    assert app.client_secret.get_secret_value() == "app-secret-value-1"
    assert idp.refresh_token.get_secret_value() == "idp-refresh-value-3"
    assert idp.token_store_path() == Path("/var/lib/ox-bb/idp.json")
    assert token.api_token.get_secret_value() == "ATATT3x-api-token-value-4"
    assert access.token.get_secret_value() == "ATCTT3x-access-token-value-5"
    # Defaults: Bitbucket Cloud, every repository, a budget below Bitbucket's ~1,000 requests/hour.
    assert app.host_url == "https://api.bitbucket.org/2.0"
    assert (app.workspaces, app.include, app.exclude) == (None, ["*"], [])
    assert app.requests_per_hour == 900 and app.requests_per_hour < 1000
    assert (access.requests_per_hour, access.timeouts.connect, access.timeouts.read) == (500, 2, 10)
    assert config.get("cloud-token") is token


def test_idp_token_store_defaults_to_the_state_dir_whatever_the_home_or_directory(tmp_path, monkeypatch):
    text = ALL_METHODS.replace("    token_store: /var/lib/ox-bb/idp.json\n", "")
    idp = load_connections(write(tmp_path, text), environ=SECRETS).get("cloud-idp")
    monkeypatch.setenv("OX_BB_STATE_DIR", str(tmp_path / "state"))
    paths = set()
    for home, cwd in (("home1", tmp_path), ("home2", tmp_path / "home1")):
        monkeypatch.setenv("OX_BB_HOME", str(tmp_path / home))
        (tmp_path / home).mkdir()
        monkeypatch.chdir(cwd)
        paths.add(idp.token_store_path())
    [path] = paths
    assert path.parent == tmp_path / "state" / "tokens" and path.name.startswith("cloud-idp-")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"OX_BB_STATE_DIR": "/srv/ox-bb-state"}, Path("/srv/ox-bb-state")),
        ({"XDG_STATE_HOME": "/home/u/.state"}, Path("/home/u/.state/ox-bb")),
        ({"HOME": "/home/u"}, Path("/home/u/.local/state/ox-bb")),
    ],
)
def test_the_state_dir_is_the_setting_else_xdg_else_home(monkeypatch, environ, expected):
    for var in ("OX_BB_STATE_DIR", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    assert state_dir() == expected


def test_env_file_beside_the_file_fills_references_and_the_environment_wins(tmp_path):
    (tmp_path / "conf").mkdir()
    write(
        tmp_path / "conf",
        "# secrets for the connections file\n"
        "export APP_SECRET=from-env-file\n"
        "IDP_SECRET='quoted-idp'\n"
        'IDP_REFRESH="quoted-refresh"\n'
        "API_TOKEN=file-token\n"
        "ACCESS_TOKEN=file-access\n",
        name="secrets.env",
    )
    path = write(tmp_path / "conf", "env_file: secrets.env\n" + ALL_METHODS)

    config = load_connections(path, environ={"API_TOKEN": "process-env-token"})

    assert config.get("cloud-app").client_secret.get_secret_value() == "from-env-file"
    assert config.get("cloud-idp").client_secret.get_secret_value() == "quoted-idp"
    assert config.get("cloud-idp").refresh_token.get_secret_value() == "quoted-refresh"
    assert config.get("cloud-token").api_token.get_secret_value() == "process-env-token"  # environment wins
    assert config.get("cloud-access-token").token.get_secret_value() == "file-access"


def test_a_missing_env_file_is_a_problem_not_a_crash(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_connections(write(tmp_path, "env_file: nowhere.env\n" + ALL_METHODS), environ=SECRETS)
    assert any("nowhere.env does not exist" in p for p in raised.value.problems)


BAD = """
connections:
  - name: good-token
    method: token
    email: alice@example.com
    api_token: ${GOOD_TOKEN}
  - name: literal
    method: token
    email: alice@example.com
    api_token: ATATT3xLITERALSECRETVALUE
  - name: typo
    method: app
    client_id: abc
    client_secret: ${GOOD_TOKEN}
    clinet_region: eu
  - name: unset
    method: access_token
    token: ${NOT_SET_ANYWHERE}
  - name: wrong-method
    method: password
  - name: good-token
    method: token
    email: bob@example.com
    api_token: ${GOOD_TOKEN}
  - name: Bad Name!
    method: token
    email: carol@example.com
    api_token: ${GOOD_TOKEN}
"""


def test_every_problem_is_reported_at_once_naming_connection_and_field(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_connections(write(tmp_path, BAD), environ={"GOOD_TOKEN": "t0ken-value"})

    problems = raised.value.problems
    expected = {
        "literal secret": ("connection 'literal'", "'api_token'", "literal secret"),
        "unknown key": ("connection 'typo'", "unknown key `clinet_region`"),
        "missing env var": ("connection 'unset'", "'token'", "${NOT_SET_ANYWHERE}", "not set"),
        "unknown method": ("connection 'wrong-method'", "unknown method 'password'", "app, idp, token, access_token"),
        "duplicate name": ("connection 'good-token'", "duplicate name"),
        "bad name": ("connection 'Bad Name!'", "'name'", "lower-case"),
    }
    for what, parts in expected.items():
        assert any(all(part in p for part in parts) for p in problems), f"{what} not reported: {problems}"
    assert len(problems) == len(expected)
    # The message lists every problem, and never repeats the literal secret it refuses.
    message = str(raised.value)
    assert "6 problem(s)" in message and all(p in message for p in problems)
    assert "LITERALSECRETVALUE" not in message


def test_the_cli_refuses_a_bad_file_with_a_nonzero_exit_and_extracts_nothing(tmp_path):
    path = write(tmp_path, BAD)
    home = tmp_path / "home"
    env = {**os.environ, "OX_BB_HOME": str(home), "GOOD_TOKEN": "t0ken-value"}

    verify = subprocess.run(
        [OX_BB, "verify", "--connections", str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    run = subprocess.run(
        [OX_BB, "run", "--stage", "extract", "--connections", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )

    for result in (verify, run):
        assert result.returncode != 0
        assert "6 problem(s)" in result.stderr
        assert "unknown method 'password'" in result.stderr and "duplicate name" in result.stderr
        assert "LITERALSECRETVALUE" not in result.stdout + result.stderr
    assert not (home / "lake").exists()


def test_web_git_and_token_urls_are_derived_from_bitbuckets_api_url(tmp_path):
    cloud = load_connections(write(tmp_path, ALL_METHODS), environ=SECRETS).get("cloud-app")

    assert cloud.base_web_url == "https://bitbucket.org"
    assert cloud.git_url == "https://bitbucket.org"
    assert cloud.token_url == "https://bitbucket.org/site/oauth2/access_token"


def test_the_sandbox_overrides_every_derived_url(sandbox, tmp_path):
    config = load_connections(sandbox.write_connections(tmp_path / "connections.yaml"))
    app = config.get("sandbox-app")

    assert app.host_url == sandbox.api_url
    assert app.base_web_url == app.git_url == sandbox.base_url
    assert app.token_url == f"{sandbox.base_url}/site/oauth2/access_token"
    # The derived token URL is the sandbox's real token endpoint.
    granted = requests.post(
        app.token_url,
        data={"grant_type": "client_credentials"},
        auth=(app.client_id, app.client_secret.get_secret_value()),
        timeout=10,
    )
    assert granted.status_code == 200 and granted.json()["access_token"]


def test_an_explicit_web_url_wins_over_the_derived_one(tmp_path):
    text = ALL_METHODS.replace(
        "    client_secret: ${APP_SECRET}\n",
        "    client_secret: ${APP_SECRET}\n    web_url: https://bb.example.com/\n",
        1,
    )
    app = load_connections(write(tmp_path, text), environ=SECRETS).get("cloud-app")
    assert app.token_url == "https://bb.example.com/site/oauth2/access_token"


@pytest.mark.parametrize(
    ("key", "selected"),
    [
        ("acme-payments/CORE/python-service", True),
        ("acme-payments/CORE/legacy-billing", False),  # excluded wins over included
        ("acme-payments/WEB/node-web", False),  # not included
        ("acme-platform/CORE/python-service", False),
    ],
)
def test_selects_applies_include_then_exclude_globs(tmp_path, key, selected):
    token = load_connections(write(tmp_path, ALL_METHODS), environ=SECRETS).get("cloud-token")
    assert token.selects(*key.split("/")) is selected


def test_by_default_every_repository_is_selected(tmp_path):
    app = load_connections(write(tmp_path, ALL_METHODS), environ=SECRETS).get("cloud-app")
    assert app.selects("any-workspace", "ANY", "any-repo")
    assert app.selects("ws", "", "repository-without-project")


def test_secrets_never_appear_in_repr_str_or_dumps_of_the_model(tmp_path):
    config = load_connections(write(tmp_path, ALL_METHODS), environ=SECRETS)

    shown = [repr(config), str(config), config.model_dump_json(), str(config.model_dump())]
    shown += [repr(c) for c in config.connections] + [str(c) for c in config.connections]
    for text in shown:
        for secret in SECRETS.values():
            assert secret not in text
    assert "**********" in repr(config.get("cloud-token"))


# -- suggestions, URL restrictions, every file checked before any network call --------------------
TYPOS = """
connections:
  - name: no-method
    methd: token
    email: alice@example.com
    api_token: ${GOOD_TOKEN}
  - name: typo
    method: token
    email: bob@example.com
    api_token: ${GOOD_TOKEN}
    incude: ["*"]
  - name: misspelt-method
    method: tokn
"""


def test_typos_get_suggestions_and_a_missing_method_is_named_as_missing(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_connections(write(tmp_path, TYPOS), environ={"GOOD_TOKEN": "t0ken-value"})

    assert raised.value.problems == [
        "connection 'no-method': missing `method` (found `methd`: did you mean `method`?); "
        "use one of app, idp, token, access_token",
        "connection 'misspelt-method': unknown method 'tokn': did you mean `token`? "
        "(use one of app, idp, token, access_token)",
        "connection 'typo': unknown key `incude`: did you mean `include`?",
    ]


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://api.bitbucket.org/2.0", True),
        ("http://127.0.0.1:8080/2.0", True),
        ("http://localhost:8080/2.0", True),
        ("http://[::1]:8080/2.0", True),
        ("http://bitbucket.example.com/2.0", False),
        ("http://10.0.0.5/2.0", False),
        ("https://alice:hunter2secret@bitbucket.example.com/2.0", False),
        ("https://alice@bitbucket.example.com/2.0", False),
    ],
)
def test_plain_http_only_for_loopback_and_never_inline_credentials(tmp_path, url, accepted):
    text = f"connections:\n  - {{name: c, method: access_token, token: '${{T}}', host_url: '{url}'}}\n"
    if accepted:
        assert load_connections(write(tmp_path, text), environ={"T": "t"}).get("c").host_url == url
        return
    with pytest.raises(ConfigError) as raised:
        load_connections(write(tmp_path, text), environ={"T": "t"})
    [problem] = raised.value.problems
    assert problem.startswith("connection 'c': field 'host_url': ")
    assert "hunter2secret" not in str(raised.value) and "alice" not in str(raised.value)


def test_run_checks_every_settings_file_before_any_network_call_and_lists_every_problem(tmp_path):
    (tmp_path / "applications.yaml").write_text("applications:\n  - {name: a, repositories: [{}], ownres: [x]}\n")
    (tmp_path / "workflows.yaml").write_text("rules:\n  - {name: r, trigger: new_finding, actoins: []}\n")
    (tmp_path / "suppressions.yaml").write_text("suppressions:\n  - {rule_id: x}\n")
    path = write(
        tmp_path,
        "connections:\n  - {name: c, method: access_token, token: '${T}', host_url: 'http://127.0.0.1:9/2.0'}\n",
    )  # nothing answers: a call would fail
    env = {**os.environ, "OX_BB_HOME": str(tmp_path / "home"), "T": "t"}
    for var in ("OX_BB_APPLICATIONS", "OX_BB_SUPPRESSIONS", "OX_BB_WORKFLOWS", "OX_BB_SLA", "DAGSTER_HOME"):
        env.pop(var, None)

    run = subprocess.run(
        [OX_BB, "run", "--connections", str(path)], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )

    assert run.returncode == 1
    assert "problem(s) in the configuration, nothing was run" in run.stderr
    assert "unknown key `ownres`: did you mean `owners`?" in run.stderr
    assert "unknown key `actoins`: did you mean `actions`?" in run.stderr
    assert "suppressions.yaml: suppressions[0]" in run.stderr
    assert "extract" not in run.stdout and not (tmp_path / "home" / "lake").exists()


def test_history_scans_and_live_checks_are_off_unless_a_connection_opts_in(tmp_path):
    text = ALL_METHODS.replace(
        "    requests_per_hour: 500\n",
        "    requests_per_hour: 500\n    history_scan: {enabled: true, max_commits: 100, branches: [release/*]}\n"
        "    live_checks: true\n",
    )
    app, _, _, access = load_connections(write(tmp_path, text), environ=SECRETS).connections
    assert (app.history_scan.enabled, app.history_scan.max_commits, app.live_checks) == (False, 5000, False)
    assert (access.history_scan.enabled, access.history_scan.max_commits, access.history_scan.branches) == (
        True,
        100,
        ["release/*"],
    )
    assert access.live_checks is True
    with pytest.raises(ConfigError, match=r"unknown key `live_check`: did you mean `live_checks`\?"):
        load_connections(write(tmp_path, text.replace("live_checks:", "live_check:")), environ=SECRETS)
    with pytest.raises(ConfigError, match="history_scan.max_commits"):
        load_connections(write(tmp_path, text.replace("max_commits: 100", "max_commits: 0")), environ=SECRETS)
