"""Small shared pieces for the model tests (not fixtures: plain functions, imported explicitly)."""
from __future__ import annotations

import numpy as np

from model import CharModel, ModelConfig, NameModel

TINY_CORPUS = ["abcde", "abcdf", "bcdea", "cdeab", "deabc", "eabcd", "aaab", "bbba"]


def tiny_model(cell: str = "rnn", hidden: int = 16, members: int = 1, seed: int = 0) -> NameModel:
    config = ModelConfig(cell=cell, hidden=hidden)
    return NameModel([CharModel.create(config, np.random.default_rng(seed + k)) for k in range(members)])
