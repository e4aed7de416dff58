"""Chat prompts for instruction-tuned decoders.

Only ChatML (`<|im_start|>role\\n...<|im_end|>\\n`, SmolLM2's template) is supported: the
GGUF's Jinja template is kept in the bundle config for reference, and `chat_format` names
the rendering implemented here, so no template engine runs inside a job.
"""

from __future__ import annotations

CHATML = "chatml"
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def detect_chat_format(template: str | None) -> str | None:
    """The chat format a GGUF `tokenizer.chat_template` implements, or None."""
    if template and "<|im_start|>" in template and "<|im_end|>" in template:
        return CHATML
    return None


def render_prompt(fmt: str | None, user: str, system: str = SMOLLM2_SYSTEM) -> str:
    """One user turn, ready for the assistant's answer."""
    if fmt is None:
        return user
    if fmt != CHATML:
        raise ValueError(f"chat format {fmt!r} is not supported (only {CHATML!r})")
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        f"<|im_start|>user\n{user}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
