"""Evaluation section: sast (to be written)."""


def run() -> dict:
    raise NotImplementedError("the sast evaluation is not written yet")
