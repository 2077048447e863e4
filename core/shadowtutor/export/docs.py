"""The README.md and Ollama Modelfile written next to an export's data files.

They say what is in the folder and give commands to fine-tune on it (Unsloth, TRL, OpenAI)
and to serve the result with Ollama. No timestamps: the same selection gives the same bytes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

README = """\
# ShadowTutor training data export

Reviewed pairs exported by ShadowTutor (format version {format_version}). Counts, filters,
options and the SHA-256 of every file are in `manifest.json`.

| split | SFT examples | preference pairs |
|---|---|---|
{split_rows}

Personal data scrubbed: {scrubbed}.
Dropped: {dropped}.

## Files

- `sft_train.jsonl`, `sft_val.jsonl`, `sft_test.jsonl`: one `{{"messages": [...]}}` per line
  (system prompt first where the conversation had one, user and assistant alternating, the
  last message the target answer). Loads as is in OpenAI fine-tuning, Unsloth and TRL.
  Tool-call examples are in OpenAI's function-calling format: the line's `tools`, assistant
  `tool_calls` (arguments as JSON strings) and `tool` messages answering them; a JSON answer's
  line carries its `response_format` (with the schema). Examples by request kind: {kinds}.
- `preference_*.jsonl`: `prompt` (messages), `chosen` and `rejected` (one assistant message
  each) for pairs where reviewers judged the student worse; for DPO in TRL or Unsloth.
- `pairs.csv`: every example with its split, scores and tags, for people.

No conversation and no prompt (compared normalised) appears in two splits. Check the files
against the manifest with `shadowtutor export verify <this folder>`.

## Fine-tune with Unsloth (LoRA, one GPU)

```python
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer
from unsloth import FastLanguageModel

model, tokenizer = FastLanguageModel.from_pretrained(
    "unsloth/Meta-Llama-3.1-8B-Instruct", max_seq_length=4096, load_in_4bit=True
)
model = FastLanguageModel.get_peft_model(
    model, r=16, lora_alpha=16,
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
)
files = {{"train": "sft_train.jsonl", "validation": "sft_val.jsonl"}}
data = load_dataset("json", data_files=files)
trainer = SFTTrainer(
    model=model, processing_class=tokenizer,
    train_dataset=data["train"], eval_dataset=data["validation"],
    args=SFTConfig(output_dir="out", num_train_epochs=3, learning_rate=2e-4,
                   per_device_train_batch_size=4, gradient_accumulation_steps=4,
                   eval_strategy="epoch"),
)
trainer.train()
model.save_pretrained_gguf("model", tokenizer, quantization_method="q4_k_m")
```

## Fine-tune with TRL (without Unsloth)

```python
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

files = {{"train": "sft_train.jsonl", "validation": "sft_val.jsonl"}}
data = load_dataset("json", data_files=files)
trainer = SFTTrainer(
    model="meta-llama/Llama-3.1-8B-Instruct",
    train_dataset=data["train"], eval_dataset=data["validation"],
    args=SFTConfig(output_dir="out", num_train_epochs=3, eval_strategy="epoch"),
)
trainer.train()
```

Preference tuning after SFT: `DPOTrainer(model=..., args=DPOConfig(output_dir="dpo"),
train_dataset=load_dataset("json", data_files="preference_train.jsonl")["train"],
processing_class=tokenizer).train()`.

Evaluate on `sft_test.jsonl` only once, at the end.

## OpenAI fine-tuning

```python
from openai import OpenAI
client = OpenAI()
train = client.files.create(file=open("sft_train.jsonl", "rb"), purpose="fine-tune")
val = client.files.create(file=open("sft_val.jsonl", "rb"), purpose="fine-tune")
client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=train.id,
                               validation_file=val.id)
```

## Serve with Ollama

Copy the GGUF file written by `save_pretrained_gguf` (for example `model/unsloth.Q4_K_M.gguf`)
next to the `Modelfile` in this folder (or edit its `FROM` line), then:

```bash
ollama create shadowtutor-student -f Modelfile
ollama run shadowtutor-student "Hello!"
```

Point ShadowTutor at it to shadow the teacher again:
`SHADOWTUTOR_STUDENT_MODEL=shadowtutor-student`. Or register it next to the current student,
linked to this export (dataset version {dataset_version}), so both answer the same live
prompts and the Leaderboard's learning curve shows whether it helped:

```bash
shadowtutor students add shadowtutor-student --model shadowtutor-student --version v2 \\
  --trained-on {dataset_version}
```
"""

MODELFILE = """\
# Ollama Modelfile for the student fine-tuned on this export.
# Put the GGUF file here (or change FROM), then: ollama create shadowtutor-student -f Modelfile
FROM ./unsloth.Q4_K_M.gguf
{system}PARAMETER temperature 0.7
PARAMETER num_ctx 4096
"""


def _system_line(examples: list[Any]) -> str:
    """A SYSTEM line when every example shares one system prompt, else a comment: baking one
    of several prompts (one per language, say) into the model would be wrong for the others."""
    prompts = Counter(
        e.prompt[0]["content"] for e in examples if e.prompt and e.prompt[0]["role"] == "system"
    )
    with_system = sum(prompts.values())
    if len(prompts) == 1 and with_system == len(examples):
        text = next(iter(prompts)).replace('"""', "'''")
        return f'SYSTEM """{text}"""\n'
    if not prompts:
        return "# No SYSTEM: the exported conversations have no system prompt.\n"
    if len(prompts) == 1:
        return "# No SYSTEM: only some of the exported conversations have a system prompt.\n"
    return (
        f"# No SYSTEM: the exported conversations use {len(prompts)} different system prompts;\n"
        "# the application sends its own with each request, as it did to the teacher.\n"
    )


def render(manifest: dict[str, Any], examples: list[Any]) -> dict[str, bytes]:
    counts = manifest["counts"]
    prefs = counts.get("preference_pairs") or {}
    rows = "\n".join(
        f"| {s} | {counts['per_split'][s]:,} | {prefs.get(s, 0) if prefs else 'not exported'} |"
        for s in ("train", "val", "test")
    )
    if manifest["options"]["scrub_pii"]:
        found = ", ".join(f"{k} {v:,}" for k, v in counts["pii"].items() if v)
        scrubbed = (
            f"yes ({found}, in {counts['pairs_with_pii']:,} pairs)" if found else "yes (none found)"
        )
    else:
        scrubbed = "NO (scrubbing was turned off for this export)"
    dropped = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts["dropped"].items())
    readme = README.format(
        format_version=manifest["format_version"],
        split_rows=rows,
        scrubbed=scrubbed,
        dropped=dropped,
        dataset_version=manifest.get("dataset_version", "(see manifest.json)"),
        kinds=", ".join(
            f"{kind} {sum(per.values()):,}" for kind, per in counts.get("per_kind", {}).items()
        )
        or "none",
    )
    modelfile = MODELFILE.format(system=_system_line(examples))
    return {"README.md": readme.encode(), "Modelfile": modelfile.encode()}
