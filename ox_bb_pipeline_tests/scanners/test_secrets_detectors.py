"""Our credential-format detectors (secrets_detectors.yaml): for each, a line it must report (with the
rule and severity the scanner gives it) and look-alike lines it must not. Sample values are generated in the
format (never real credentials)."""

from __future__ import annotations

import pytest

from ox_bb_pipeline.scanners.base import severity_table
from ox_bb_pipeline.scanners.secrets import SecretsScanner, _rule_by_detector
from ox_bb_pipeline.scanners.secrets_detectors import load_detectors
from ox_bb_pipeline_tests.evaluation.secrets import sample_value

from .test_secrets import repo_with

pytestmark = pytest.mark.usefixtures("secret_salt")

# rule -> (file, template of the line with {value}, value template, look-alike lines that must stay silent)
CASES = {
    "atlassian-api-token": (
        "jira.sh",
        "curl -u bot@acme.io:{value} https://acme.atlassian.net",
        "ATATT3xFfGF0{b64url:150}={HEX:8}",
        ["Atlassian API tokens start with ATATT3, see the docs.", "token = ATATT3xFfGF0short"],
    ),
    "bitbucket-app-password": (
        "clone.sh",
        "git clone https://ci:{value}@bitbucket.org/acme/web.git",
        "ATBB{alnum:24}{HEX:8}",
        ["prefix ATBB marks app passwords", "ATBBshort1234"],
    ),
    "bitbucket-access-token": (
        "deploy.sh",
        'curl -H "Authorization: Bearer {value}" https://api.bitbucket.org',
        "ATCTT3xFfGN0{b64url:150}={HEX:8}",
        ["ATCTT3 is the access-token prefix"],
    ),
    "bitbucket-oauth-consumer": (
        "bitbucket.env",
        "BITBUCKET_CLIENT_SECRET={value}",
        "{alnum:32}",
        [
            "BITBUCKET_CLIENT_SECRET=${BITBUCKET_CLIENT_SECRET}",
            "BITBUCKET_CLIENT_SECRET=<your-consumer-secret>",
            "BITBUCKET_COMMIT=abc123",
        ],
    ),
    "bitbucket-pipelines-variable": (
        "bitbucket-pipelines.yml",
        "              PASSWORD: '{value}'",
        "{lowernum:12}",
        ["              PASSWORD: $FTP_PASSWORD", "              USER: deploy"],
    ),
    "aws-secret-key": (
        "aws.env",
        "aws_secret_access_key={value}",
        "{b64:40}",
        ["aws_secret_access_key=${AWS_SECRET_ACCESS_KEY}"],
    ),
    "github-fine-grained-token": (
        "gh.sh",
        "export GH_PAT={value}",
        "github_pat_{alnum:22}_{alnum:59}",
        ["github_pat_ tokens are fine-grained"],
    ),
    "gcp-service-account-key": (
        "sa.json",
        '  "private_key": "-----BEGIN PRIVATE KEY-----\\n{value}\\n-----END PRIVATE KEY-----\\n",',
        "{b64:64}",
        ['  "private_key": "",', '  "private_key_id": "abc"'],
    ),
    "gcp-api-key": ("maps.js", 'const MAPS = "{value}";', "AIza{b64url:35}", ['const prefix = "AIza";']),
    "azure-ad-client-secret": (
        "azure.yaml",
        "client_secret: {value}",
        "{alnum:3}8Q~{alnum:31}",
        ["client_secret: ${AZURE_CLIENT_SECRET}"],
    ),
    "vault-token": ("vault.sh", "export VAULT_TOKEN={value}", "hvs.{alnum:24}", ["vault login -method=oidc"]),
    "databricks-token": ("etl.py", 'TOKEN = "{value}"', "dapi{hex:32}", ['URL = "https://dapi.example"']),
    "digitalocean-token": ("do.tf", '  token = "{value}"', "dop_v1_{hex:64}", ["  token = var.do_token"]),
    "openai-token": (
        "llm.py",
        "OPENAI = '{value}'",
        "sk-proj-{b64url:74}T3BlbkFJ{b64url:74}",
        ["OPENAI = os.environ['OPENAI_API_KEY']"],
    ),
    "anthropic-api-key": ("llm.py", "ANTHROPIC = '{value}'", "sk-ant-api03-{b64url:93}AA", ["model = 'sk-ant'"]),
    "huggingface-token": ("models.py", 'HF = "{value}"', "hf_{alpha:34}", ['HF = "hf_hub_download"']),
    "shopify-token": ("shop.rb", "TOKEN = '{value}'", "shpat_{hex:32}", ["TOKEN = ENV['SHOPIFY']"]),
    "postman-api-key": (
        "newman.sh",
        "newman run c.json --postman-api-key {value}",
        "PMAK-{hex:24}-{hex:34}",
        ["newman run c.json --postman-api-key $POSTMAN_KEY"],
    ),
    "grafana-token": (
        "grafana.env",
        "GRAFANA_SA_TOKEN={value}",
        "glsa_{alnum:32}_{hex:8}",
        ["GRAFANA_SA_TOKEN=${GRAFANA_SA_TOKEN}"],
    ),
    "newrelic-key": ("newrelic.yml", "api_key: {value}", "NRAK-{uppernum:27}", ["api_key: <%= ENV['NR_KEY'] %>"]),
    "doppler-token": (
        "doppler.sh",
        "export DOPPLER_TOKEN={value}",
        "dp.st.prd.{alnum:40}",
        ["doppler run -- ./start.sh"],
    ),
}


def test_every_detector_of_the_data_file_has_a_case_and_a_severity():
    rule_of = _rule_by_detector()  # built from severity/secrets.yaml
    assert {rule_of.get(cls.secret_type) for cls in load_detectors().values()} == set(CASES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_a_detector_reports_its_format_and_not_the_look_alikes(rule, tmp_path):
    path, template, value_template, negatives = CASES[rule]
    value = sample_value(value_template, rule)
    # the look-alikes in a file of their own: a YAML mapping keeps only the last of two equal keys
    files = {f"src/{path}": template.replace("{value}", value) + "\n", f"other/{path}": "\n".join(negatives) + "\n"}
    [output] = SecretsScanner().scan([repo_with(tmp_path, files)])
    assert [(f.file_path, f.start_line, f.rule_id, f.base_severity) for f in output.findings] == [
        (f"src/{path}", 1, rule, severity_table("secrets")[rule]["severity"])
    ]
    assert value not in str(output.findings[0].row())


def test_a_gcp_key_file_is_one_finding_not_also_a_private_key(tmp_path):
    key = sample_value("{b64:64}", "gcp")
    text = (
        '{\n  "type": "service_account",\n  "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        + key
        + '\\n-----END PRIVATE KEY-----\\n"\n}\n'
    )
    [output] = SecretsScanner().scan([repo_with(tmp_path, {"keys/sa.json": text})])
    assert [(f.start_line, f.rule_id, f.base_severity) for f in output.findings] == [
        (3, "gcp-service-account-key", "critical")
    ]


def test_atlassian_tokens_are_found_right_after_an_equals_sign(tmp_path):
    api = sample_value("ATATT3xFfGF0{b64url:140}={HEX:8}", "properties")
    access = sample_value("ATCTT3xFfGN0{b64url:140}={HEX:8}", "properties")
    text = f"jira.api.token={api}\nbitbucket.token={access}\n"
    [output] = SecretsScanner().scan([repo_with(tmp_path, {"config/app.properties": text})])
    assert [(f.start_line, f.rule_id) for f in output.findings] == [
        (1, "atlassian-api-token"),
        (2, "bitbucket-access-token"),
    ]


def test_the_data_file_is_read_once_per_version_and_copies_loaded_by_path_share_its_classes(tmp_path):
    """detect-secrets imports secrets_detectors.py by path once per custom plugin it loads: every copy hands
    out the package module's classes (a second parse would make new ones), and an edited file is read again."""
    from detect_secrets.util.importlib import import_file_as_module

    from ox_bb_pipeline.scanners import secrets_detectors

    copy = import_file_as_module(secrets_detectors.__file__)
    assert copy is not secrets_detectors
    classes = load_detectors()
    assert {name: getattr(copy, name) for name in classes} == classes
    assert all(getattr(secrets_detectors, name) is cls for name, cls in classes.items())

    data = tmp_path / "detectors.yaml"
    data.write_text(secrets_detectors.DETECTORS_FILE.read_text())
    first = load_detectors(data)
    assert load_detectors(data) == first and set(first) == set(classes)
    data.write_text(data.read_text() + "  - type: Example Token\n    patterns: ['(?P<secret>exm_[a-z0-9]{32})']\n")
    edited = load_detectors(data)
    assert set(edited) == {*classes, "ExampleTokenDetector"}
    assert edited["ExampleTokenDetector"].secret_type == "Example Token"
