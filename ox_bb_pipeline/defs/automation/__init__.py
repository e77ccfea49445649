"""Automation: the nightly scan and on-demand jobs, the nightly schedule, change and failure sensors."""
