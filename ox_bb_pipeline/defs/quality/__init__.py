"""Data quality: blocking Great Expectations checks on raw tables, findings and marts."""
