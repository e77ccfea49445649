"""The secrets scanner's precision filters (secrets_filters.yaml), line by line: each input line, the value a
detector reported on it, and whether the filters keep it or which filter removes it; plus the counts a scan
reports and the errors a malformed filter file gets."""

from __future__ import annotations

import random

import pytest

from ox_bb_pipeline.scanners.secrets import SecretsScanner, filtered_summary
from ox_bb_pipeline.scanners.secrets_filters import (
    _KEY_BEFORE,
    Candidate,
    FilterFileError,
    first_filter,
    key_before,
    load_filters,
)
from ox_bb_pipeline_tests.evaluation.secrets import sample_value

from .test_secrets import repo_with

pytestmark = pytest.mark.usefixtures("secret_salt")

HEX40 = sample_value("{hex:40}", "hex40")
HEX64 = sample_value("{hex:64}", "hex64")
HEX32 = sample_value("{hex:32}", "hex32")
B64 = sample_value("{b64:44}", "b64")

# (path, line before, line, value, detector kind) -> the filter that removes it, or None (kept)
CASES = [
    # known-example-value
    (
        "docs/aws.md",
        "",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "AKIAIOSFODNN7EXAMPLE",
        "pattern",
        "known-example-value",
    ),
    (
        "docs/aws.md",
        "",
        "secret = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "pattern",
        "known-example-value",
    ),
    ("app.py", "", 'token = "<your-token>"', "<your-token>", "keyword", "known-example-value"),
    (
        "app.ts",
        "",
        '"github_pat_1234567890ABCDEFGHIJKL_MNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz1234567890ABCDEFGHI"',
        "github_pat_1234567890ABCDEFGHIJKL_MNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz1234567890ABCDEFGHI",
        "pattern",
        "known-example-value",
    ),
    ("app.py", "", f'token = "{B64}"', B64, "entropy", None),
    # code-expression
    ("auth.go", "", "for user, password := range accounts {", "range accounts {", "keyword", "code-expression"),
    (
        "proxy.test.ts",
        "",
        "password: `ghp_${makeTestToken()}`,",
        "ghp_${makeTestToken()}",
        "keyword",
        "code-expression",
    ),
    ("values.yaml", "", "  exporter: |-", "shared:\n  password: Tq7-vR2mZx9", "keyword", "code-expression"),
    # dummy-words
    ("doc.md", "", 'gin.H{"user": user, "secret": "no secret"}', "no secret", "keyword", "dummy-words"),
    ("values.yaml", "", "password: testpassword", "testpassword", "keyword", "dummy-words"),
    ("x_test.go", "", 'password := "my-super-secret-password"', "my-super-secret-password", "keyword", "dummy-words"),
    ("t.ts", "", 'const secret = "password123";', "password123", "keyword", "dummy-words"),
    ("values.yaml", "", "password: jiraToken", "jiraToken", "keyword", "dummy-words"),
    ("settings.py", "", 'db_password = "Tq7-vR2mZx9"', "Tq7-vR2mZx9", "keyword", None),
    ("tokens.py", "", "STRIPE = 'sk_live_testpassword'", "sk_live_testpassword", "pattern", None),
    # secret-reference
    (
        "values.yaml",
        "",
        "  secretName: prometheus-node-exporter-tls",
        "prometheus-node-exporter-tls",
        "keyword",
        "secret-reference",
    ),
    ("values.yaml", "", "  passwordKey: admin-password", "admin-password", "keyword", "secret-reference"),
    ("values.yaml", "", '  existingSecret: "my-data-source"', "my-data-source", "keyword", "secret-reference"),
    ("values.yaml", "", "secretConfig: true", "true", "keyword", "secret-reference"),
    ("values.yaml", "", "  secretKey: Zq81mVx03LrT5k", "Zq81mVx03LrT5k", "keyword", None),
    # git-object-id
    ("main.tf", "", f'    git_commit = "{HEX40}"', HEX40, "entropy", "git-object-id"),
    ("PYSEC-1.yaml", "", f"  - fixed: {HEX40}", HEX40, "entropy", "git-object-id"),
    ("ci.yml", "", f"      - uses: actions/checkout@{HEX40} # v4", HEX40, "entropy", "git-object-id"),
    ("sync.ts", '  "actions/setup-node",', f'  "{HEX40}",', HEX40, "entropy", "git-object-id"),
    ("t.ts", "  const sha256OidA =", f'    "{HEX64}";', HEX64, "entropy", "git-object-id"),
    ("docs.md", "", f"see https://github.com/o/r/commit/{HEX32[:12]}", HEX32[:12], "entropy", "git-object-id"),
    ("app.env", "", f"API_TOKEN={HEX40}", HEX40, "entropy", None),
    ("app.env", "", f"DATADOG_KEY={HEX32}", HEX32, "entropy", None),
    ("app.env", "", f"DD_APP_KEY={HEX40}", HEX40, "entropy", None),
    ("config.js", "", f'  signingKey: "{HEX64}",', HEX64, "entropy", None),
    # content-digest
    ("index.html", "", f'<script integrity="sha384-{B64}">', f"sha384-{B64}", "entropy", "content-digest"),
    ("Chart.yaml", "", f"digest: sha256:{HEX64}", HEX64, "entropy", "content-digest"),
    ("test_low.py", "", f"b'WWW-Authenticate: Digest nonce=\"{HEX32}\"'", HEX32, "entropy", "content-digest"),
    ("README.md", "", f'"sha-256": "{HEX40}"', HEX40, "entropy", "content-digest"),
    # lock-file-integrity
    (
        "vendor/web/pnpm-lock.yaml",
        "",
        f"    resolution: {{integrity: sha512-{B64}}}",
        B64,
        "entropy",
        "lock-file-integrity",
    ),
    ("deps/custom.lock", "", f'checksum = "{HEX64[:50]}"', HEX64[:50], "entropy", "lock-file-integrity"),
    # sarif-fingerprint
    (
        "scan.sarif",
        "",
        f'  "primaryLocationLineHash": "{HEX32[:16]}:1"',
        f"{HEX32[:16]}:1",
        "entropy",
        "sarif-fingerprint",
    ),
    ("results.json", "", f'      "guid": "{HEX32}",', HEX32, "entropy", "sarif-fingerprint"),
    ("scan.sarif", "", f'      "text": "{B64}"', B64, "entropy", "sarif-fingerprint"),
    ("scan.sarif", "", f'      "apiToken": "{B64}"', B64, "entropy", None),
    # uuid
    (
        "config.json",
        "",
        f'{{"tenant": "{{{HEX32[:8]}-{HEX32[8:12]}-{HEX32[12:16]}-{HEX32[16:20]}-{HEX32[20:]}}}"}}',
        f"{{{HEX32[:8]}-{HEX32[8:12]}-{HEX32[12:16]}-{HEX32[16:20]}-{HEX32[20:]}}}",
        "entropy",
        "uuid",
    ),
    # encoded-public-material
    (
        "main.tf",
        "",
        'cluster_auth_base64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM1ekND"',
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM1ekND",
        "entropy",
        "encoded-public-material",
    ),
    (
        "main.tf",
        "",
        'key_b64 = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlF"',
        "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlF",
        "entropy",
        None,
    ),
    # minified-bundle
    ("static/js/app.min.js", "", f'var k="{B64}";', B64, "entropy", "minified-bundle"),
    ("dashboards/node.yaml", "", '{"panels":[' + "1," * 300 + f'"{B64}"]}}', B64, "entropy", "minified-bundle"),
    (
        "static/js/app.min.js",
        "",
        "var k='sk_live_Zq81mVx03LrT5k0a9Bc7Dd2E';",
        "sk_live_Zq81mVx03LrT5k0a9Bc7Dd2E",
        "pattern",
        None,
    ),
    # prose
    (
        "HISTORY.md",
        "",
        "When proxies are defined with user info (`https://user:hunter2x@proxy:8080`), Requests",
        "hunter2x",
        "keyword",
        "prose",
    ),
    ("docs/setup.md", "", "db_password: Tq7-vR2mZx9", "Tq7-vR2mZx9", "keyword", None),
]


@pytest.mark.parametrize(
    ("path", "previous", "line", "value", "kind", "expected"),
    CASES,
    ids=[f"{c[5] or 'kept'}:{c[2][:40]}" for c in CASES],
)
def test_each_filter_removes_its_noise_and_keeps_the_rest(path, previous, line, value, kind, expected):
    assert first_filter(Candidate(value, line, previous, path, kind)) == expected


# pieces of the text before a value: names, quotes, brackets, spaces (Unicode too), operators and what is none
KEY_PIECES = [
    *("key", "a.b", "$x", "_9", "x-y", "9", "-", "é", "ſ"),
    *('"', "'", "`", "]", ")", "(", "[", "{", ",", "#", ">"),
    *(" ", "\t", "\n", "\u00a0", ":", "=", ":=", "=>", "=="),
]


def test_the_name_before_a_value_is_read_from_the_end_as_the_regex_reads_it():
    # key_before reads backwards in linear time what _KEY_BEFORE.search finds (it is quadratic on a long line)
    rng = random.Random(17)
    texts = ["".join(rng.choice(KEY_PIECES) for _ in range(rng.randint(0, 9))) for _ in range(30_000)]
    expected = [m.group(1) if (m := _KEY_BEFORE.search(text)) else "" for text in texts]
    assert [key_before(text) for text in texts] == expected
    assert sum(map(bool, expected)) > 1_000  # the pieces make many assignments, not only misses
    assert key_before("x" * 50_000 + ' y "') == ""
    assert key_before('{"a": "b", ' * 4_000 + '"client_secret": "') == "client_secret"
    assert Candidate("v", "z" * 50_000 + ' password = "v"').key == "password"


def test_every_filter_in_the_data_file_has_a_case_and_a_reason():
    names = {f.name for f in load_filters()}
    assert names == {c[5] for c in CASES if c[5]}
    assert all(f.why for f in load_filters())


def test_a_scan_reports_what_each_filter_removed_and_never_the_values(tmp_path):
    snapshot = repo_with(
        tmp_path,
        {
            "infra/main.tf": f'  tags = {{\n    git_commit = "{HEX40}"\n  }}\n',
            "docs/aws.md": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
            "charts/values.yaml": "auth:\n  password: testpassword\n",
        },
    )
    [output] = SecretsScanner().scan([snapshot])
    assert output.findings == []
    removed = {(r["filter"], r["rule_id"]): r["removed"] for r in output.extra["secrets_filtered"]}
    assert removed[("git-object-id", "hex-high-entropy-string")] == 1
    assert removed[("dummy-words", "keyword")] == 1
    assert removed[("known-example-value", "aws-secret-key")] >= 1
    assert HEX40 not in str(output.extra)
    summary = filtered_summary(output.extra["secrets_filtered"])
    assert summary == {
        name: sum(r["removed"] for r in output.extra["secrets_filtered"] if r["filter"] == name)
        for name in ("dummy-words", "git-object-id", "known-example-value")
    }
    assert summary["git-object-id"] == 1 and summary["dummy-words"] == 1


def test_a_malformed_filter_file_names_the_filter_and_the_fix(tmp_path):
    bad = tmp_path / "filters.yaml"
    bad.write_text("filters:\n  - name: broken\n    detectors: [entropy]\n    when:\n      - valeu: 'x'\n")
    with pytest.raises(FilterFileError, match="filter 'broken': unknown condition.*valeu"):
        load_filters(bad)
    bad.write_text("filters:\n  - name: broken\n    detectors: [entropy]\n    when:\n      - value: '(['\n")
    with pytest.raises(FilterFileError, match="filter 'broken', condition 'value'"):
        load_filters(bad)
    bad.write_text("filters:\n  - name: broken\n    detectors: [keyword]\n    when:\n      - value_words: [yes, no]\n")
    with pytest.raises(FilterFileError, match="filter 'broken', condition 'value_words'.*quote"):
        load_filters(bad)
