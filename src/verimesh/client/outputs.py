"""What a verified output means to the requester.

The output blob (canonical bytes of the output tensor) is what the revealed ``output_root``
commits to, so the SDK trusts only it:
- ``embed``: the embedding is decoded here from the verified int32 tensor (unit vectors at
  2^-15): nothing the provider says on top is used.
- ``generate``: the verified tensor is the generated token ids; the text is the provider's
  decoding of them (decoding needs the model's tokenizer, which a requester may not hold).
"""

from __future__ import annotations

from typing import Any

import numpy as np

EMBED_FRAC = 15  # models.minilm.EMBED_FRAC: embeddings are int32 at 2^-15


def decode_output(task: str, tensor: np.ndarray, provider_output: Any) -> Any:
    """The output a requester reads, derived from the verified tensor where possible."""
    if task == "embed":
        vectors = (tensor.astype(np.float64) / 2.0**EMBED_FRAC).tolist()
        # A job with one text (a string input) gets one vector, a batch a list of vectors.
        single = not (isinstance(provider_output, list) and provider_output and isinstance(provider_output[0], list))
        return vectors[0] if single and len(vectors) == 1 else vectors
    return provider_output
