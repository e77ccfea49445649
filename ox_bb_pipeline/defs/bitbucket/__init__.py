"""Extract stage: Bitbucket connections as dynamic partitions, raw tables into the lake."""
