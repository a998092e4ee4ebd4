# Stages 2 and 4-8 of PIPELINE.md on a tiny byte-level Llama (hidden 256,
# 2 layers): training, compression, evaluation, quality gates, LoRA
# modifiers trained on the base's failures, a router. Everything runs on a
# CPU in seconds; the same targets take resources { gpus = 1 } on a GPU.

# Stage 2: base and draft train at the same time (no dependency between them).
# Windows of 512 bytes, the model's whole context: the examples are up to
# ~600 bytes, and positions a model never trained on score badly.
train "base" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  dataset = "//data:splits/train.jsonl"
  params  = { steps = 200, seed = 1, seq_len = 512, batch = 4 }
}

train "draft" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  dataset = "//data:splits/train.jsonl"
  params  = { steps = 120, seed = 2, seq_len = 512, batch = 4, config = { num_hidden_layers = 1 } }
}

# Stage 4, in the order it can run: prune, then a recovery fine-tune on the
# float checkpoint (the pruned weights stay zero), then AWQ and GGUF.
prune "sparse" {
  model    = ":base"
  sparsity = 0.5
}

train "recovered" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  base    = ":sparse"
  dataset = "//data:splits/train.jsonl"
  params  = { steps = 60, lr = 1e-3, seed = 3, seq_len = 512, batch = 4, keep_sparsity = true }
}

calibrate "calib" {
  model   = ":recovered"
  dataset = "//data:splits/train.jsonl"
  samples = 16
  seq_len = 256
}

awq "q4" {
  model       = ":recovered"
  calibration = ":calib"
  bits        = 4
  target      = "Q4_K"
}

gguf "model" {
  model = ":q4"
  type  = "Q4_K_M"
  name  = "tiny"
}

# The same checkpoint without AWQ: the baseline the gate compares against.
gguf "model_rtn" {
  model = ":recovered"
  type  = "Q4_K_M"
  name  = "tiny-rtn"
}

# Stage 8: scored by llama.cpp, the runtime that will serve the file.
eval "model_val" {
  model   = ":model"
  dataset = "//data:splits/val.jsonl"
  by      = "domain"
}

eval "rtn_val" {
  model   = ":model_rtn"
  dataset = "//data:splits/val.jsonl"
  by      = "domain"
}

# The release gate: absolute quality, no more than 2% worse than the plain
# 4-bit file, and the shipped sizes.
gate "release" {
  metrics          = ":model_val"
  baseline         = ":rtn_val"
  max              = { perplexity = 14 }
  max_increase_pct = { perplexity = 2 }
  max_bytes        = { ":model" = "1MB", ":model_zst" = "1MB" }
}

# Stage 5: modifiers trained only on the base's failures. The adapters are
# trained on the AWQ checkpoint (:q4), which computes what :recovered does
# with rescaled channels, so they apply exactly to the GGUF of :q4.
eval "train_scores" {
  model   = ":model"
  dataset = "//data:splits/train.jsonl"
}

dataset "failures_coding" {
  from  = "//data:splits/train.jsonl"
  where = row.domain == "coding"
  where_metric {
    eval          = ":train_scores"
    perplexity_gt = var.failure_ppl
  }
}

dataset "failures_math" {
  from  = "//data:splits/train.jsonl"
  where = row.domain == "math"
  where_metric {
    eval          = ":train_scores"
    perplexity_gt = var.failure_ppl
  }
}

dataset "failures_tool_use" {
  from  = "//data:splits/train.jsonl"
  where = row.domain == "tool_use"
  where_metric {
    eval          = ":train_scores"
    perplexity_gt = var.failure_ppl
  }
}

lora "coding" {
  base    = ":q4"
  dataset = ":failures_coding"
  rank    = 8
  alpha   = 16
  params  = { steps = 40, seed = 1, seq_len = 512, batch = 4 }
}

lora "math" {
  base    = ":q4"
  dataset = ":failures_math"
  rank    = 8
  alpha   = 16
  params  = { steps = 40, seed = 1, seq_len = 512, batch = 4 }
}

lora "tool_use" {
  base    = ":q4"
  dataset = ":failures_tool_use"
  rank    = 8
  alpha   = 16
  params  = { steps = 40, seed = 1, seq_len = 512, batch = 4 }
}

merge_lora "coding_merged" {
  base    = ":q4"
  adapter = ":coding"
}

# Stage 6: perplexity routing from the base's validation scores.
router "router" {
  base_eval = ":model_val"
  model     = ":model"
  modifiers = { coding = ":coding", math = ":math", tool_use = ":tool_use" }
  threshold = var.failure_ppl
}

# Stage 3: speed. The draft is trained on the same data with the same
# byte-level tokenizer (tiny_llama.py's 258 tokens), so llama.cpp accepts
# it for the base; serving checks that as llama.cpp does, and that the
# adapters were trained on the checkpoint :model is converted from (:q4).
gguf "draft_gguf" {
  model = ":draft"
  type  = "Q8_0"
  name  = "tiny-draft"
}

serving "serve" {
  model        = ":model"
  draft        = ":draft_gguf"
  draft_max    = 4
  cache_type_k = "q8_0"
  cache_type_v = "q8_0"
  ctx_size     = 512
  adapters     = { coding = ":coding", math = ":math", tool_use = ":tool_use" }
  router       = ":router"
}

# How many of the draft's tokens the base keeps, on the default prompts
# ("Question: ...\nAnswer:", the template's shape), with serve's settings.
# Not part of :final; build it to measure (README).
bench_serving "serve_bench" {
  serving = ":serve"
  model   = ":model"
  draft   = ":draft_gguf"
}

# zstd goes last: the file that is shipped.
compress "model_zst" {
  input = ":model"
}

# Stage 7: what is published. Building it builds everything above, and
# nothing here is built unless the gate passes.
files "final" {
  srcs = [":model", ":model_zst", ":draft", ":coding", ":math", ":tool_use", ":coding_merged", ":router", ":release"]
}
