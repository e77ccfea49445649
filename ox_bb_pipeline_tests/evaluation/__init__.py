"""`make eval`: detection quality on public code with ground truth (a benchmark, not part of `make test`).

The corpora are public repositories named by owner/name and commit; only our labels (facts about
them) live here, never their code. See `corpus.py` for where the repositories come from.
"""
