"""Advisories stage: OSV exports, CISA KEV and EPSS synced into the index SCA reads, daily."""
