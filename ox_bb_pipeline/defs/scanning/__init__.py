"""Scan stage: snapshots and scanners per connection partition, findings into the lake."""
