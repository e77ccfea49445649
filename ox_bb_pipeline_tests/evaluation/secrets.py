"""Evaluation section: secrets (to be written)."""


def run() -> dict:
    raise NotImplementedError("the secrets evaluation is not written yet")
