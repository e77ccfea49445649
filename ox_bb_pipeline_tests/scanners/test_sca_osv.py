"""OSV matching: native version order per ecosystem, range events, fixed versions, severity, loading."""

from __future__ import annotations

import json
import zipfile

import pytest

from ox_bb_pipeline.scanners.sca.osv import AdvisoryDatabase, advisory_digest, advisory_from_osv, load_database
from ox_bb_sandbox.content import advisories_dir


def record(
    ecosystem: str,
    name: str,
    *ranges: list[dict],
    versions: list[str] | None = None,
    range_type: str = "ECOSYSTEM",
    **fields,
) -> dict:
    affected = {
        "package": {"ecosystem": ecosystem, "name": name},
        "ranges": [{"type": range_type, "events": events} for events in ranges],
    }
    if versions is not None:
        affected["versions"] = versions
    return {"id": fields.pop("id", "TEST-1"), "summary": "test", "affected": [affected], **fields}


def affected(rec: dict, version: str, ecosystem: str | None = None, name: str | None = None) -> bool:
    package = rec["affected"][0]["package"]
    database = AdvisoryDatabase([advisory_from_osv(rec)])
    return bool(database.matches(ecosystem or package["ecosystem"], name or package["name"], version))


def fixed(rec: dict, version: str) -> str | None:
    package = rec["affected"][0]["package"]
    [match] = AdvisoryDatabase([advisory_from_osv(rec)]).matches(package["ecosystem"], package["name"], version)
    return match.fixed_version


@pytest.fixture(scope="module")
def sandbox_db() -> AdvisoryDatabase:
    return load_database([advisories_dir()])


# -- version ordering per ecosystem -----------------------------------------------------------------


@pytest.mark.parametrize(
    "version, expected",
    [
        ("1.9", True),
        ("2.0rc1", True),
        ("2.0.dev1", True),
        ("2.0a1", True),
        ("1.9.post1", True),
        ("2.0", False),
        ("2.0.0", False),
        ("2.0.post1", False),
        ("2.1", False),
    ],
)
def test_pypi_uses_pep_440_order(version, expected):
    assert affected(record("PyPI", "pkg", [{"introduced": "0"}, {"fixed": "2.0"}]), version) is expected


@pytest.mark.parametrize(
    "version, expected",
    [
        ("2.0-beta9", True),
        ("2.0-rc1", True),
        ("2.0-SNAPSHOT", True),
        ("2.0", False),
        ("2.0.0", False),
        ("2.0.1", False),
        ("1.10", True),
    ],
)
def test_maven_qualifiers_order_before_the_release(version, expected):
    assert affected(record("Maven", "g:a", [{"introduced": "1.2"}, {"fixed": "2.0"}]), version) is expected


def test_maven_release_qualifier_and_numeric_segments():
    spring = record("Maven", "g:a", [{"introduced": "0"}, {"fixed": "5.2.20.RELEASE"}])
    assert affected(spring, "5.2.19.RELEASE") and not affected(spring, "5.3.17")
    assert affected(record("Maven", "g:a", [{"introduced": "1.5"}, {"fixed": "1.10.0"}]), "1.9")


@pytest.mark.parametrize(
    "version, expected",
    [
        ("5.0.0-alpha.1", True),
        ("5.0.0-alpha.10", True),
        ("5.0.0-beta.2", True),
        ("5.0.0-beta.3", False),
        ("5.0.0", False),
        ("4.17.1", False),
        ("5.0.0-alpha", False),
    ],
)
def test_npm_prereleases_follow_semver(version, expected):
    rec = record("npm", "express", [{"introduced": "5.0.0-alpha.1"}, {"fixed": "5.0.0-beta.3"}])
    assert affected(rec, version) is expected


@pytest.mark.parametrize(
    "version, expected",
    [
        ("v0.0.0-20210101000000-abcdef123456", True),
        ("0.0.0-20210101000000-abcdef123456", True),
        ("v0.3.7", True),
        ("0.3.7", True),
        ("v0.3.8", False),
        ("v0.3.8-0.20220101000000-abcdef123456", True),
        ("v0.4.0", False),
    ],
)
def test_go_versions_with_v_prefix_and_pseudo_versions(version, expected):
    rec = record("Go", "golang.org/x/text", [{"introduced": "0"}, {"fixed": "0.3.8"}], range_type="SEMVER")
    assert affected(rec, version) is expected


@pytest.mark.parametrize(
    "version, expected",
    [
        ("2.2.3", True),
        ("2.2.3.1", False),
        ("2.2.3.pre1", True),
        ("2.1.9", False),
        ("2.2", True),
    ],
)
def test_rubygems_four_segment_and_prerelease_versions(version, expected):
    assert affected(record("RubyGems", "rack", [{"introduced": "2.2"}, {"fixed": "2.2.3.1"}]), version) is expected


def test_crates_use_semver():
    rec = record("crates.io", "regex", [{"introduced": "0"}, {"fixed": "1.5.5"}], range_type="SEMVER")
    assert affected(rec, "1.5.4") and affected(rec, "1.5.5-rc.1") and not affected(rec, "1.5.5")


def test_pypi_names_match_after_pep_503_normalisation():
    rec = record("PyPI", "zope.interface", [{"introduced": "0"}, {"fixed": "5.0"}])
    assert affected(rec, "4.0", name="Zope_Interface") and not affected(rec, "4.0", name="zope-interfaces")
    assert not affected(rec, "4.0", ecosystem="npm", name="zope.interface")


# -- range events -----------------------------------------------------------------------------------


def test_last_affected_is_inclusive_and_limit_exclusive():
    inclusive = record("PyPI", "pkg", [{"introduced": "1.0"}, {"last_affected": "1.5"}])
    assert affected(inclusive, "1.5") and not affected(inclusive, "1.5.post1") and not affected(inclusive, "0.9")
    assert fixed(inclusive, "1.2") is None
    limited = record("PyPI", "pkg", [{"introduced": "1.0"}, {"limit": "2.0"}])
    assert affected(limited, "1.9") and not affected(limited, "2.0")


def test_one_range_with_several_introduced_fixed_pairs():
    rec = record("npm", "pkg", [{"introduced": "0"}, {"fixed": "1.0.0"}, {"introduced": "2.0.0"}, {"fixed": "2.1.0"}])
    assert [affected(rec, v) for v in ("0.5.0", "1.0.0", "1.5.0", "2.0.0", "2.0.9", "2.1.0")] == [
        True,
        False,
        False,
        True,
        True,
        False,
    ]
    assert fixed(rec, "0.5.0") == "1.0.0" and fixed(rec, "2.0.9") == "2.1.0"


def test_explicit_versions_list_is_ored_with_ranges():
    rec = record("PyPI", "pkg", [{"introduced": "3.0"}, {"fixed": "3.1"}], versions=["1.0", "2.10"])
    assert affected(rec, "1.0") and affected(rec, "2.10.0") and affected(rec, "3.0.5")
    assert not affected(rec, "1.1") and not affected(rec, "2.1")
    only_listed = record("Go", "example.com/m", versions=["1.2.0"])
    assert affected(only_listed, "v1.2.0") and not affected(only_listed, "v1.2.1")


def test_unorderable_versions_match_nothing_in_ranges():
    rec = record("PyPI", "pkg", [{"introduced": "0"}, {"fixed": "2.0"}])
    assert not affected(rec, "not-a-version") and not affected(rec, "")
    broken_bound = record("PyPI", "pkg", [{"introduced": "0"}, {"fixed": "???"}])
    assert not affected(broken_bound, "1.0")


def test_git_ranges_are_not_evaluated():
    rec = record("PyPI", "pkg", [{"introduced": "abc123"}, {"fixed": "def456"}], range_type="GIT")
    assert advisory_from_osv(rec) is None


# -- fixed versions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, expected",
    [
        ("2.14.1", "2.15.0"),
        ("2.13.0", "2.15.0"),
        ("2.10.0", "2.12.2"),
        ("2.4", "2.12.2"),
        ("2.0-beta9", "2.3.1"),
        ("2.3", "2.3.1"),
    ],
)
def test_log4shell_fixed_version_is_the_next_fix_of_the_matching_range(sandbox_db, version, expected):
    [match] = sandbox_db.matches("Maven", "org.apache.logging.log4j:log4j-core", version)
    assert match.fixed_version == expected


@pytest.mark.parametrize("version", ["2.3.1", "2.12.2", "2.12.4", "2.15.0", "2.17.1"])
def test_log4shell_fixed_lines_are_not_affected(sandbox_db, version):
    assert sandbox_db.matches("Maven", "org.apache.logging.log4j:log4j-core", version) == []


def test_fixed_version_skips_a_fix_that_another_range_still_covers():
    rec = record("PyPI", "pkg", [{"introduced": "0"}, {"fixed": "1.2"}], [{"introduced": "1.2"}, {"fixed": "1.4"}])
    assert fixed(rec, "1.1") == "1.4"
    no_escape = record("PyPI", "pkg", [{"introduced": "0"}, {"fixed": "1.2"}], [{"introduced": "1.2"}])
    assert fixed(no_escape, "1.1") is None


def test_withdrawn_records_are_dropped(sandbox_db):
    assert "OXSB-2026-0001" not in sandbox_db.advisories and sandbox_db.withdrawn == 1
    assert [m.advisory.id for m in sandbox_db.matches("npm", "express", "4.17.1")] == ["GHSA-rv95-896h-c2vc"]
    live = json.loads((advisories_dir() / "OXSB-2026-0001.json").read_text())
    live.pop("withdrawn")
    assert affected(live, "4.17.1")  # the same record, not withdrawn, would match


def test_boundary_version_equal_to_fixed_is_not_affected(sandbox_db):
    assert [m.advisory.id for m in sandbox_db.matches("PyPI", "PyYAML", "5.3.1")] == ["GHSA-8q59-q68h-6hv4"]
    assert [m.advisory.id for m in sandbox_db.matches("PyPI", "pyyaml", "5.3")] == [
        "GHSA-6757-jp84-gxfx",
        "GHSA-8q59-q68h-6hv4",
    ]


# -- severity ---------------------------------------------------------------------------------------


def test_severity_from_vector_then_label_then_default():
    base = record("PyPI", "pkg", [{"introduced": "0"}])
    vector = {"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:L/UI:R/S:U/C:H/I:N/A:N"}
    scored = advisory_from_osv({**base, "severity": [vector], "database_specific": {"severity": "CRITICAL"}})
    assert (scored.severity, scored.score, scored.vector) == ("medium", 4.4, vector["score"])
    labelled = advisory_from_osv(
        {
            **base,
            "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}],
            "database_specific": {"severity": "MODERATE", "cwe_ids": ["CWE-79"]},
        }
    )
    assert (labelled.severity, labelled.score, labelled.cwe) == ("medium", None, "CWE-79")
    assert advisory_from_osv(base).severity == "medium"


# -- loading ----------------------------------------------------------------------------------------


def _zip(path, records: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in records.items():
            archive.writestr(name, data)


def test_all_zip_loads_like_the_directory(tmp_path, sandbox_db):
    _zip(tmp_path / "all.zip", {p.name: p.read_bytes() for p in advisories_dir().glob("*.json")})
    from_zip = load_database([tmp_path / "all.zip"])
    assert from_zip.advisories == sandbox_db.advisories and from_zip.withdrawn == 1
    assert from_zip.digest != sandbox_db.digest  # content-addressed, per source


def test_directory_of_ecosystem_zips_and_records_with_junk(tmp_path):
    (tmp_path / "PyPI").mkdir()
    flask = (advisories_dir() / "GHSA-m2qf-hxjv-5gpq.json").read_bytes()
    _zip(
        tmp_path / "PyPI" / "all.zip",
        {"GHSA-m2qf-hxjv-5gpq.json": flask, "broken.json": b"{nope", "README.txt": b"not a record"},
    )
    (tmp_path / "extra.json").write_text(json.dumps([record("npm", "left-pad", [{"introduced": "0"}], id="X-1")]))
    (tmp_path / "debian.json").write_text(json.dumps(record("Debian:12", "openssl", [{"introduced": "0"}], id="D-1")))
    database = load_database([tmp_path])
    assert sorted(database.advisories) == ["GHSA-m2qf-hxjv-5gpq", "X-1"] and database.unreadable == 1
    assert database.matches("PyPI", "flask", "2.3.1")[0].fixed_version == "2.3.2"


def test_newest_copy_of_an_advisory_wins(tmp_path):
    old = record("PyPI", "pkg", [{"introduced": "0"}, {"fixed": "1.0"}], id="X-1", modified="2024-01-01T00:00:00Z")
    new = record("PyPI", "pkg", [{"introduced": "0"}, {"fixed": "1.1"}], id="X-1", modified="2025-01-01T00:00:00Z")
    (tmp_path / "a.json").write_text(json.dumps(new))
    _zip(tmp_path / "all.zip", {"X-1.json": json.dumps(old).encode()})
    assert load_database([tmp_path]).matches("PyPI", "pkg", "1.0")[0].fixed_version == "1.1"


def test_digest_changes_when_a_record_changes(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(record("PyPI", "pkg", [{"introduced": "0"}])))
    before = advisory_digest([tmp_path])
    (tmp_path / "a.json").write_text(json.dumps(record("PyPI", "pkg", [{"introduced": "1.0"}])))
    assert advisory_digest([tmp_path]) != before


def test_missing_osv_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="OX_BB_OSV_PATH"):
        load_database([tmp_path / "nowhere"])
