"""DinoBot's name model: a character-level recurrent network in pure NumPy.

Usable without Discord: ``python -m model train|finetune|sample|eval|score``. Imports NumPy and the
standard library only.
"""
from .checkpoint import (
    checkpoint_bytes,
    load_checkpoint,
    load_checkpoint_bytes,
    remove_stale_temp_files,
    save_checkpoint,
)
from .corpus import BASE_CHECKPOINT, corpus_dir, read_names, train_path, val_path
from .ensemble import NameModel, evaluate
from .errors import CheckpointError, CorpusError, InvalidName, ModelError
from .network import CharModel, ModelConfig
from .promotion import Losses, Verdict, decide_promotion, split_holdout
from .recipes import (
    DEFAULT_MEMBERS,
    DEFAULT_MODEL,
    DEFAULT_TRAINING,
    FINE_TUNING,
    FitResult,
    fine_tune,
    replay_samples,
    train_model,
)
from .sampling import MAX_SAMPLES, NameRequest, Sample, sample_many, sample_names, score_name, score_names
from .strength import DEFAULT_STRENGTH, STRENGTHS, Strength, get_strength
from .training import Progress, TrainConfig
from .vocab import ALPHABET, MAX_NAME_LEN, MIN_NAME_LEN, normalize_name, normalize_prefix

__all__ = [
    "ALPHABET", "BASE_CHECKPOINT", "CharModel", "CheckpointError", "CorpusError", "DEFAULT_MEMBERS",
    "DEFAULT_MODEL", "DEFAULT_TRAINING", "FINE_TUNING", "FitResult", "InvalidName", "MAX_NAME_LEN",
    "MAX_SAMPLES", "MIN_NAME_LEN", "ModelConfig", "ModelError", "NameModel", "NameRequest", "Progress", "Sample",
    "TrainConfig", "checkpoint_bytes", "corpus_dir", "evaluate", "fine_tune", "load_checkpoint",
    "load_checkpoint_bytes", "normalize_name", "normalize_prefix", "read_names", "remove_stale_temp_files",
    "replay_samples", "sample_many", "sample_names", "save_checkpoint", "score_name", "score_names",
    "train_model", "train_path", "val_path",
    "DEFAULT_STRENGTH", "STRENGTHS", "Strength", "get_strength", "Losses", "Verdict", "decide_promotion",
    "split_holdout",
]
