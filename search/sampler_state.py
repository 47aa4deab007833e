"""The sampler's state, pickled beside the study so a resumed seeded study continues the same
sequence of proposals.

It is the tool's own file (`studies/NAME.sampler`): its SHA-256 is stored in the study and
checked before unpickling, so a replaced or damaged file is never loaded (a fresh sampler
starts instead, with a warning). Writes go to a temporary file and are renamed into place.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import threading
from pathlib import Path

log = logging.getLogger(__name__)
SAMPLER_HASH_ATTR = "trustbits:sampler_sha256"


class _LockSafePickler(pickle.Pickler):
    # Optuna's genetic samplers hold a threading.Lock (unpicklable); a fresh lock is its
    # faithful restored state.
    def reducer_override(self, obj):
        if isinstance(obj, type(threading.Lock())):
            return threading.Lock, ()
        if isinstance(obj, type(threading.RLock())):
            return threading.RLock, ()
        return NotImplemented


def _dumps(obj) -> bytes:
    buf = io.BytesIO()
    _LockSafePickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


class SamplerState:
    """The sampler pickled beside the study, so a resumed seeded study continues the same
    sequence. It is the tool's own file: its SHA-256 is stored in the study and checked
    before unpickling, so a replaced file is never loaded."""

    def __init__(self, spec):
        folder = spec.path.parent if spec.path else Path.cwd()
        self.path = folder / f"{spec.name}.sampler"

    def load(self, study):
        want = study.user_attrs.get(SAMPLER_HASH_ATTR)
        if not want or not self.path.is_file():
            return None
        blob = self.path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != want:
            log.warning("sampler state %s does not match the study's checksum; starting a fresh sampler", self.path)
            return None
        return pickle.loads(blob)  # integrity checked above; written only by trustbits

    def save(self, study, sampler) -> None:
        blob = _dumps(sampler)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(blob)
        os.replace(tmp, self.path)
        study.set_user_attr(SAMPLER_HASH_ATTR, hashlib.sha256(blob).hexdigest())
