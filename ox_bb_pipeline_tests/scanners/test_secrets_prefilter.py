"""The per-line prefilter (secrets_prefilter) is conservative: scan_lines with it reports exactly what every
plugin on every line reports, over the labelled credential set, our detectors' cases and look-alikes, every
sandbox profile with its planted secrets, and generated lines around each gate's edges (entropy lengths, case
folding, IP shapes, keywords in several file kinds). Also: every plugin has a gate, and ordinary code is
skipped."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
from detect_secrets.settings import get_plugins

from ox_bb_pipeline.scanners import secrets as tip
from ox_bb_pipeline.scanners.secrets_lines import _ShortValuesSkipped, scan_files, scan_lines
from ox_bb_pipeline.scanners.secrets_prefilter import Prefilter
from ox_bb_pipeline_tests.evaluation.secrets import credential_tree, sample_value
from ox_bb_sandbox.content import PROFILES, render_profile

from .test_secrets_detectors import CASES

# file names that change what the plugins do (keyword patterns by file type, files-limited detectors)
KINDS = ("app.py", "config.yaml", "settings.ini", "main.go", "app.js", "notes.txt", "bitbucket-pipelines.yml")


def _results(texts: list[str], filename: str, prefilter: bool) -> list[tuple]:
    hits = scan_lines(enumerate(texts, start=1), filename=filename, prefilter=prefilter)
    return sorted((h.type, h.line_number, h.secret_value or "") for h in hits)


def _assert_same(files: dict[str, list[str]]) -> int:
    """Both scans of every file; returns the number of hits (so a test can check it exercised something). Also:
    the plugins the prefilter's passes name for each line are those its gates match on the line alone, and passes
    over all the files at once name for each file's lines what passes over the file alone name."""
    hits = 0
    with tip._engine():
        prefilter = Prefilter(get_plugins())
        for name, texts in files.items():
            full = _results(texts, name, prefilter=False)
            assert _results(texts, name, prefilter=True) == full, name
            hits += len(full)
            alone = {index: plugins for index, text in enumerate(texts) if (plugins := prefilter.plugins_for(text))}
            assert prefilter.plugins_by_line(texts) == alone, name
        # the passes made once over all the files (a commit's): what each file alone gives
        together = prefilter.plugins_by_files([(texts, name) for name, texts in files.items()])
        assert together == [prefilter.plugins_by_line(texts, name) for name, texts in files.items()]
        scanned = scan_files((enumerate(texts, start=1), name) for name, texts in files.items())
        assert [sorted((h.type, h.line_number, h.secret_value or "") for h in hits) for hits in scanned] == [
            _results(texts, name, prefilter=True) for name, texts in files.items()
        ]
    return hits


def _edge_lines(rng: random.Random) -> list[str]:
    """Lines at the edges of the gates: quoted runs around the entropy lengths, keywords in odd cases and
    Unicode case folds, IP and port shapes, token prefixes with short and long bodies."""
    b64 = string.ascii_letters + string.digits + "+/-_="
    lines = []
    for n in (7, 8, 9, 10, 16, 21, 22, 23, 24, 32, 40, 64):
        for quote in ("'", '"', "`"):
            body = "".join(rng.choice(b64) for _ in range(n))
            hexed = "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(n))
            lines += [f"x = {quote}{body}{quote}", f"y: {quote}{hexed}{quote}", f"{quote}{hexed}{quote} == secret"]
        # all characters distinct: the highest entropy a string of that length can have (log2 n)
        distinct_b64 = "".join(rng.sample(b64, min(n, len(b64))))
        distinct_hex = "".join(rng.sample("0123456789abcdef", min(n, 16)))
        lines += [f"token = '{distinct_b64}'", f'digest = "{distinct_hex}"']
    for word in ("password", "PassWord", "SECRET", "ſecret", "api_key", "apikey", "Api-Key", "db_pass", "pwd"):
        value = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20))
        lines += [
            f'{word} = "{value}"',
            f"{word}: {value}",
            f"{word}:= '{value}'",
            f'my_{word}("{value}")',
            f'"{value}" == {word}',
            f"export {word.upper()}={value}",
            f"  - {word.upper()}={value}",
        ]
    lines += [
        "server = 8.8.8.8",
        "host: 203.0.113.7:8443",
        "version 1.2.3",
        "ip 192.168.1.1 and 10.0.0.1",
        "url = https://user:hunter2pass@example.com/x",
        "curl https://alice:Tr0ub4dor&3@db.example.org",
        "token = AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        "ghp_" + "".join(rng.choice(string.ascii_letters) for _ in range(36)),
        "ghp_short",
        # a Mailchimp key (32 characters, -us, the datacenter), a Telegram bot token (digits, colon, 35 characters)
        "mc = '" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(32)) + "-us12'",
        "key-us1 and " + "".join(rng.choice(string.ascii_lowercase) for _ in range(31)) + "-us7",
        "bot: 123456789:" + "".join(rng.choice(string.ascii_letters + string.digits + "_-") for _ in range(35)),
        "bot: ١٢٣٤٥٦٧٨٩:" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(35)),
        "port 8080:" + "".join(rng.choice(string.ascii_letters) for _ in range(34)),
        # a Discord bot token (M/N/O, 23-25 characters, a dot, 6, a dot, 27), one with Unicode digits in it
        "discord: M" + "".join(rng.choice(string.ascii_letters) for _ in range(23)) + ".Ab-_12.x" + "y" * 26,
        "N" + "a" * 24 + ".٣٣٣٣٣٣." + "".join(rng.choice(string.ascii_letters + "_-") for _ in range(27)),
        "rk_live_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24)),
        "PuTTY-User-Key-File-2: ssh-rsa",
        "xoxb-1234-5678-abc",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "AccountKey=" + "A" * 88,
        "sk_live_" + "a1" * 12,
        "//registry.npmjs.org/:_authToken=abc",
        # the assignment detectors (IBM, Cloudant, Softlayer, AWS): values of their lengths and alphabets
        "ibm_cloud_iam_api_key = '" + "".join(rng.choice(string.ascii_letters + "_-") for _ in range(44)) + "'",
        "iam_apikey: " + "".join(rng.choice(string.ascii_lowercase + string.digits + "_-") for _ in range(44)),
        "cloudant_password = '" + "".join(rng.choice("0123456789abcdef") for _ in range(64)) + "'",
        "cl_api_key = " + "".join(rng.choice(string.ascii_lowercase) for _ in range(24)),
        "https://acct:" + "".join(rng.choice(string.ascii_lowercase) for _ in range(24)) + "@acct.cloudant.com",
        "softlayer_api_key = " + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(64)),
        "https://api.softlayer.com/soap/v3/"
        + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(64)),
        "aws_key = '" + "".join(rng.choice(string.ascii_letters + string.digits + "/+") for _ in range(40)) + "'",
        "ibm_cos_hmac_secret_access_key = " + "".join(rng.choice("0123456789abcdef") for _ in range(48)),
        # their names in other cases, quotes and operators (a Kelvin sign folds to `k`), and values without a name
        '["CLOUDANT-APIKEY"] => "' + "".join(rng.choice("0123456789ABCDEF") for _ in range(64)) + '"',
        "clou_apitoken  " + "".join(rng.choice(string.ascii_letters) for _ in range(24)),
        "cl\u212aey:= '" + "".join(rng.choice(string.ascii_lowercase) for _ in range(24)) + "'",
        "  cl-pw: " + "".join(rng.choice(string.ascii_lowercase) for _ in range(30)),
        "HTTPS://acct:" + "".join(rng.choice("0123456789abcdef") for _ in range(64)) + "@acct.CLOUDANT.COM",
        "terminationGracePeriodSecondsAndMoreLetters: "
        + "".join(rng.choice(string.ascii_lowercase) for _ in range(24)),
        '"IAM_PASSWORD" :: "' + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(44)) + '"',
        "cloud-api-\u212aey   " + "".join(rng.choice(string.ascii_letters + "_-") for _ in range(44)),
        "ibm-iam-token=" + "".join(rng.choice(string.ascii_letters) for _ in range(45)),
        "value: " + "".join(rng.choice(string.ascii_letters + "_-") for _ in range(44)),
        "def handler(request):",
        "    return render(request, 'index.html', {'items': items})",
        "import { Component } from '@angular/core';",
        "",
        "    ",
    ]
    return lines


def _corpus(tmp_path: Path) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {}
    # the labelled credential set (positives and negatives), as written for the secrets evaluation
    credential_tree(tmp_path)
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        files[str(path.relative_to(tmp_path))] = path.read_text().splitlines()
    # our detectors' cases: the line with a generated value, and the look-alikes
    for rule, (name, template, value, look_alikes) in CASES.items():
        line = template.replace("{value}", sample_value(value, rule))
        files[f"cases/{rule}/{name}"] = [line, *look_alikes]
    # every sandbox profile's files with their planted secrets (two draws each)
    for profile in PROFILES:
        for seed in (1, 2):
            rendered, _planted = render_profile(profile, random.Random(seed), repo_slug=f"{profile}-{seed}")
            for path, data in rendered.items():
                files[f"{profile}-{seed}/{path}"] = data.decode("utf-8", errors="replace").splitlines()
    # generated edge lines, in each file kind (the keyword plugin reads them by file type)
    edges = _edge_lines(random.Random(17))
    for kind in KINDS:
        files[f"edges/{kind}"] = edges
    return files


def test_the_prefiltered_scan_reports_exactly_what_the_full_scan_reports(tmp_path: Path):
    assert _assert_same(_corpus(tmp_path)) > 50  # the comparison saw plenty of real hits


def test_the_shortcuts_change_no_result_where_a_line_filter_or_many_short_values_decide():
    """The line filters run once a plugin found something (the allowlist filter only near a pragma's literal), and
    the entropy plugins skip values with too few (distinct) characters to pass their limit: allowlist pragmas on the
    line and the line before, in each comment style, and look-alikes that allow nothing, an indirect reference,
    and a minified line of quoted values of every length and variety (around each plugin's limit) give what the
    reference gives."""
    rng = random.Random(5)
    b64 = string.ascii_letters + string.digits + "+/"
    values = ["".join(rng.choice(b64 if n % 2 else "0123456789abcdef") for _ in range(n)) for n in range(1, 48)]
    # long values of few distinct characters, around each limit (log2 of 8 for hex, of 22.6 for base64)
    few = ["ab" * 15, "".join(rng.sample("0123456789abcdef", 8)) * 4, "".join(rng.sample(string.ascii_letters, 22)) * 2]
    enough = ["".join(rng.sample("0123456789abcdef", 9)) * 4, "".join(rng.sample(string.ascii_letters, 23))]
    values += few + enough
    quotes = ['"', "'", '"']
    minified = ",".join(f"{quotes[n % 3]}{v}{quotes[n % 3]}" for n, v in enumerate(values))
    secret = 'KEY_ID = "AKIAZ7QW3RTY5UIO2PLM"'  # a key id shape the AWS detector reports, not a real key
    lines = [
        secret,
        "# pragma: allowlist nextline secret",
        secret,  # allowlisted by the line before
        # allowlisted on the line itself, in each comment style, and pragmas that allow nothing
        f"{secret}  # pragma: allowlist secret",
        f"{secret} // pragma: whitelist-secret",
        f"{secret} /* pragma: allowlist-secret */",
        f"{secret} <!-- pragma: allowlist secret -->",
        f"{secret} -- pragma:allowlist secret",
        f"{secret} # pragma: allow list secret",
        "// pragma: allowlist-nextline-secret",
        secret,
        f"{secret} # allowlist secret, but no pragma",
        f"token = get_secret('{values[40]}')",  # an indirect reference: the line is filtered
        f"var a=[{minified}];" * 3,
        f'"{values[40]}" "{values[40]}"',  # the same value twice on a line: one hit
        *(f'x = "{value}"' for value in values[-5:]),
    ]
    files = {f"min/{kind}": lines for kind in KINDS}
    assert _assert_same(files) >= 2 * len(KINDS)
    with tip._engine():
        reported = [line for _, line, _ in _results(lines, "min/app.js", prefilter=True)]
        assert {1, 9, 12, 15} <= set(reported) and not {3, 4, 5, 6, 7, 8, 11, 13} & set(reported), reported
        # what an entropy plugin reports on each line, before the filters, with and without the shortcut
        entropy = [p for p in get_plugins() if isinstance(p, HighEntropyStringsPlugin)]
        assert len(entropy) == 2 and all(_ShortValuesSkipped.applies(p) for p in entropy)
        for plugin in entropy:
            for number, line in enumerate(lines, start=1):
                full = plugin.analyze_line(filename="min/app.js", line=line, line_number=number)
                assert _ShortValuesSkipped(plugin)("min/app.js", line, number) == full
                assert {s.line_number for s in full} <= {number}
        assert any(p.analyze_line(filename="a.js", line=lines[13], line_number=14) for p in entropy)
        raw = {s.secret_value for p in entropy for n, line in enumerate(lines) for s in p.analyze_line("a.js", line, n)}
        assert set(enough) <= raw and not set(few) & raw


def test_every_configured_plugin_has_a_gate_and_ordinary_code_is_skipped():
    from detect_secrets.settings import get_plugins

    code = [
        "def handler(request):",
        "    return render(request, 'index.html', {'items': items})",
        "for (let i = 0; i < n; i++) { total += i; }",
    ]
    with tip._engine():
        prefilter = Prefilter(get_plugins())
        assert prefilter.ungated() == []
        assert prefilter.candidates(code) == set()
        assert prefilter.candidates([*code, 'password = "hunter2-but-longer"']) == {3}


@pytest.mark.parametrize(
    "line",
    ["key = 'ATBB" + "a" * 32 + "'", "ip = 8.8.4.4", "AWS_SECRET = " + "A" * 40],
)
def test_a_candidate_line_meets_the_plugins_its_gates_name(line):
    from detect_secrets.settings import get_plugins

    with tip._engine():
        prefilter = Prefilter(get_plugins())
        assert prefilter.candidates([line]) == {0}
        # fewer plugins than all of them, and every plugin that reports on the line among them
        met = {type(p).__name__ for p in prefilter.plugins_for(line)}
        assert len(met) < len(prefilter.gates)
        for plugin in get_plugins():
            if plugin.analyze_line(filename="x.txt", line=line, line_number=1):
                assert type(plugin).__name__ in met


def test_the_keyword_plugin_meets_a_line_without_quotes_only_where_its_patterns_for_the_file_need_none():
    # in YAML `password: value` is a keyword hit; in Python or plain text every keyword pattern needs a quote
    lines = ["password: Tq7vR2mZx9Lp", 'password = "Tq7vR2mZx9Lp"']
    with tip._engine():
        prefilter = Prefilter(get_plugins())

        def keyword_lines(filename: str) -> set[int]:
            met = prefilter.plugins_by_line(lines, filename)
            return {index for index, plugins in met.items() if "KeywordDetector" in {type(p).__name__ for p in plugins}}

        assert keyword_lines("config.yaml") == {0, 1}
        assert keyword_lines("app.py") == keyword_lines("notes.txt") == {1}
        assert keyword_lines("main.go") == {0, 1}
        for name in ("config.yaml", "app.py", "notes.txt", "main.go"):
            assert _results(lines, name, prefilter=True) == _results(lines, name, prefilter=False), name
        assert [line for _, line, _ in _results(lines, "config.yaml", prefilter=True)] == [1, 2]
