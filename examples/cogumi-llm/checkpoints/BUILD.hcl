# The two pretrained checkpoints, fetched once, pinned to a commit.
#
# A `model` target hashes a directory that must already be in the workspace;
# these `run` targets instead make the download itself an action: its key is
# the command (repository, pinned revision, file list), so the 16 GB of
# Llama-3.1-8B-Instruct are downloaded by one team member, stored in the
# local cache, uploaded to the team's bucket, and every other machine (and
# every Slurm job) gets them from there, verified by digest. Nothing is
# downloaded by `cogumi validate` or `cogumi build --dry-run`.
#
# Needs: huggingface_hub's `hf` CLI on PATH, and access to the gated Meta
# repository: `hf auth login` once (the token lands in ~/.cache/huggingface,
# read through HOME; it is never part of a file, a key or a log here).

run "llama_8b_instruct" {
  command = <<-EOT
    hf download meta-llama/Llama-3.1-8B-Instruct \
      --revision 0e9e39f249a16976918f6564b8830bc894c89659 \
      --local-dir "$OUT" \
      config.json generation_config.json \
      model-00001-of-00004.safetensors model-00002-of-00004.safetensors \
      model-00003-of-00004.safetensors model-00004-of-00004.safetensors \
      model.safetensors.index.json \
      special_tokens_map.json tokenizer.json tokenizer_config.json
  EOT
  # What the revision holds (original/consolidated.00.pth, Meta's own
  # format, is not asked for). Undeclared files (hf's .cache/) are dropped.
  outs = [
    "config.json",
    "generation_config.json",
    "model-00001-of-00004.safetensors",
    "model-00002-of-00004.safetensors",
    "model-00003-of-00004.safetensors",
    "model-00004-of-00004.safetensors",
    "model.safetensors.index.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
  ]
}

# The speculative-decoding draft: Llama-3.2-1B-Instruct, of Llama 3.1's
# family and tokenizer (the same 128,256 tokens). The plan named
# TinyLlama-1.1B, which llama.cpp refuses as a draft for Llama-3.1-8B: its
# vocabulary is Llama 2's SentencePiece one (README.md, "The draft").
run "llama_1b_instruct" {
  command = <<-EOT
    hf download meta-llama/Llama-3.2-1B-Instruct \
      --revision 9213176726f574b556790deb65791e0c5aa438b6 \
      --local-dir "$OUT" \
      config.json generation_config.json model.safetensors \
      special_tokens_map.json tokenizer.json tokenizer_config.json
  EOT
  outs = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
  ]
}
