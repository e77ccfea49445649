"""Automation: nightly and on-demand jobs, the nightly schedule, change and failure sensors."""
