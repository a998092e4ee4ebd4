# Checkpoints of real models' exact shapes (random weights around the real
# tokenizer), written into shapes/ckpt on the GPU machine by
# internal/tinyllama/cmd/tinyllama (see README.md, "Real shapes"), through
# the quality chain of the pipeline: prune -> calibrate (CUDA) -> awq ->
# gguf, eval on CUDA, and a LoRA on CUDA. The python toolchain's backend
# (var.backend) picks transformers or cogumi's built-in runtime.

# TinyLlama-1.1B's shapes: hidden 2048, 22 layers, 32 heads, 4 KV heads,
# intermediate 5632, Llama 2's 32,000-token vocabulary.
model "tinyllama" {
  path = "ckpt/tinyllama"
}

prune "tinyllama_pruned" {
  model    = ":tinyllama"
  sparsity = 0.65
}

calibrate "tinyllama_calib" {
  model    = ":tinyllama_pruned"
  dataset  = "//data:tiny"
  samples  = 16
  seq_len  = 256
  max_rows = 512
  resources {
    gpus = 1
  }
}

# llama-imatrix's importance matrix of the pruned checkpoint, on CUDA.
imatrix "tinyllama_imatrix" {
  model      = ":tinyllama_pruned"
  dataset    = "//data:tiny"
  chunk_size = 512
  resources {
    gpus = 1
  }
}

awq "tinyllama_awq" {
  model       = ":tinyllama_pruned"
  calibration = ":tinyllama_calib"
  target      = "Q4_K"
}

gguf "tinyllama_q4km" {
  model = ":tinyllama_awq"
  type  = "Q4_K_M"
}

eval "tinyllama_eval" {
  model        = ":tinyllama_awq"
  dataset      = "//data:tiny"
  max_examples = 64
  resources {
    gpus = 1
  }
}

# The pruned checkpoint scored by each backend (it does not depend on the
# calibration, which differs by backend).
eval "tinyllama_eval_pruned" {
  model        = ":tinyllama_pruned"
  dataset      = "//data:tiny"
  max_examples = 64
  resources {
    gpus = 1
  }
}

lora "tinyllama_lora" {
  base    = ":tinyllama"
  dataset = "//data:tiny"
  rank    = 16
  alpha   = 32
  params  = { steps = 50, seed = 1 }
  resources {
    gpus = 1
  }
}

# Qwen3-0.6B's shapes: hidden 1024, 28 layers, 16 heads of 128 (q/k norms),
# 8 KV heads, intermediate 3072, tied embeddings of 151,936 rows around
# Qwen3's 151,669-token tokenizer.
model "qwen3" {
  path = "ckpt/qwen3"
}

prune "qwen3_pruned" {
  model    = ":qwen3"
  sparsity = 0.65
}

calibrate "qwen3_calib" {
  model    = ":qwen3_pruned"
  dataset  = "//data:tiny"
  samples  = 16
  seq_len  = 256
  max_rows = 512
  resources {
    gpus = 1
  }
}

awq "qwen3_awq" {
  model       = ":qwen3_pruned"
  calibration = ":qwen3_calib"
  target      = "Q4_K"
}

gguf "qwen3_q4km" {
  model = ":qwen3_awq"
  type  = "Q4_K_M"
}

eval "qwen3_eval" {
  model        = ":qwen3_awq"
  dataset      = "//data:tiny"
  max_examples = 64
  resources {
    gpus = 1
  }
}
