"""Reading and writing PIDM weights (this package re-exports its public names).

Two formats are read:

- our ``.safetensors`` files, whose ``__metadata__`` names the network config and how the model was
  trained (``pidm_format``, ``config``, ``resolution``, ``source_drop_prob``, ``pose_drop_prob``,
  ``name``, free-form ``training``);
- the official ``last.pt`` (ankanbhunia/PIDM): a torch pickle holding ``model``, ``ema``,
  ``scheduler``, ``optimizer`` and ``conf``. It is read by a restricted unpickler: tensors and
  plain containers are rebuilt, every other class becomes an inert ``PickleStub``, and no code
  from the file ever runs (:mod:`pidm_core.torch_pickle`). Only the tensors that are used are read from disk.

Every tensor of the network must be in the file with its exact shape. The official file's tensors
that the forward pass never uses (184 of them, ~18 M parameters) are accepted and reported; any
other extra tensor is an error.

Files are hostile until checked: every size a file declares (safetensors header and offsets, zip
records, pickled storages and views) is checked against the file's real size, and every config
field against its type and range, before anything is allocated or built (docs/robustness.md, Models).

Modules, one job each: :mod:`.metadata` (ModelInfo and the file's metadata), :mod:`.official_keys`
(tensor names and shapes against the network), :mod:`.sniff` (which format a file is),
:mod:`.safetensors_file` (the header reader), :mod:`.torch_file` (the restricted unpickler's entry),
:mod:`.load` and :mod:`.save`. The CPU dtype choice lives in :mod:`pidm_core.devices`.
"""

from ..devices import BF16_PROBE_SPEEDUP, auto_dtype_cpu, cpu_has_bf16_instructions, cpu_prefers_bf16, parse_dtype
from ..errors import CheckpointError, CheckpointNotFoundError
from .load import EMBEDDED_NAME, EMBEDDED_PATH, PIDMModel, load_model, read_checkpoint, resolve_model_path
from .metadata import (FORMAT_VERSION, OFFICIAL_CONFIG, OFFICIAL_POSE_DROP_PROB, OFFICIAL_SOURCE_DROP_PROB, ModelInfo,
                       official_model_info)
from .official_keys import LoadReport, match_state_dict
from .safetensors_file import MAX_SAFETENSORS_HEADER
from .save import save_model, save_state_dict
from .torch_file import safe_torch_load

__all__ = [
    "BF16_PROBE_SPEEDUP", "CheckpointError", "CheckpointNotFoundError", "EMBEDDED_NAME", "EMBEDDED_PATH",
    "FORMAT_VERSION", "LoadReport", "MAX_SAFETENSORS_HEADER", "ModelInfo", "OFFICIAL_CONFIG",
    "OFFICIAL_POSE_DROP_PROB", "OFFICIAL_SOURCE_DROP_PROB", "PIDMModel", "auto_dtype_cpu",
    "cpu_has_bf16_instructions", "cpu_prefers_bf16", "load_model", "match_state_dict", "official_model_info",
    "parse_dtype", "read_checkpoint", "resolve_model_path", "safe_torch_load", "save_model", "save_state_dict",
]
