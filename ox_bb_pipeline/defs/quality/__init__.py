"""Data quality: blocking Great Expectations checks on the raw tables, the findings and the marts."""
