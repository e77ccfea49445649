"""The fingerprint salt: one per installation, in the state dir, never per data home, so moving or
rebuilding a home does not reopen secret findings as new ones."""

from __future__ import annotations

import stat

from ox_bb_pipeline.redaction import adopt_salt, salted_hash


def test_without_a_configured_salt_one_is_made_once_in_the_state_dir_and_every_home_shares_it(
    tmp_path, monkeypatch, state_dir
):
    monkeypatch.delenv("OX_BB_SECRET_SALT", raising=False)
    hashes = set()
    for home in ("home1", "home2"):
        hashes.add(salted_hash("AKIAIOSFODNN7EXAMPLE", tmp_path / home))
    hashes.add(salted_hash("AKIAIOSFODNN7EXAMPLE"))  # a scanner, which hashes without knowing the home

    assert len(hashes) == 1
    salt = state_dir / "secret-salt"
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600 and len(salt.read_text()) == 64
    assert not (tmp_path / "home1" / "cache" / "secret-salt").exists()
    assert [p.name for p in state_dir.iterdir()] == ["secret-salt"]  # no temporary file left behind


def test_a_home_from_before_the_state_dir_hands_its_salt_over_so_fingerprints_keep_their_ids(
    tmp_path, monkeypatch, state_dir
):
    monkeypatch.delenv("OX_BB_SECRET_SALT", raising=False)
    old = tmp_path / "old-home"
    (old / "cache").mkdir(parents=True)
    (old / "cache" / "secret-salt").write_text("a" * 64)
    monkeypatch.setenv("OX_BB_SECRET_SALT", "a" * 64)
    before = salted_hash("AKIAIOSFODNN7EXAMPLE")
    monkeypatch.delenv("OX_BB_SECRET_SALT")

    adopt_salt(old)  # what the extract and scan stages do first with the data home they are given
    assert salted_hash("AKIAIOSFODNN7EXAMPLE") == before
    assert (state_dir / "secret-salt").read_text() == "a" * 64
