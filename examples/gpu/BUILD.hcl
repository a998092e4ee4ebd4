# Runs anywhere, in seconds.
train "cpu" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  dataset = "//data:tiny"
  params  = { steps = 30, seed = 1 }
}

# Two independent GPU trainings: on a machine with two GPUs they run at once,
# each with its own CUDA_VISIBLE_DEVICES; with one (or COGUMI_GPUS=0) one
# after the other.
train "gpu_a" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  dataset = "//data:tiny"
  params  = { steps = 300, seed = 1, device = "cuda" }
  resources {
    gpus = 1
  }
}

train "gpu_b" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  dataset = "//data:tiny"
  params  = { steps = 300, seed = 2, device = "cuda" }
  resources {
    gpus = 1
  }
}

# A third gpus = 1 training waits for a free device.
train "gpu_c" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  dataset = "//data:tiny"
  params  = { steps = 300, seed = 3, device = "cuda" }
  resources {
    gpus = 1
  }
}

# Both devices of a two-GPU machine.
train "gpu_pair" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  dataset = "//data:tiny"
  params  = { steps = 300, seed = 4, device = "cuda" }
  resources {
    gpus = 2
  }
}

# The pipeline's shape: fine-tune from a base, on a typed, sized GPU.
train "tuned" {
  script  = "train.py"
  srcs    = ["tiny_llama.py"]
  base    = ":gpu_a"
  dataset = "//data:tiny"
  params  = { steps = 100, lr = 1e-3, dtype = "bfloat16", device = "cuda" }
  resources {
    gpus       = 1
    gpu_type   = "h100"
    gpu_memory = "80GB"
    time       = "30m"
  }
}

# The same training through Slurm.
train "on_cluster" {
  script   = "train.py"
  srcs     = ["tiny_llama.py"]
  dataset  = "//data:tiny"
  params   = { steps = 300, seed = 3 }
  executor = "cluster"
  resources {
    gpus = 1
    time = "10m"
  }
}

# Calibration statistics for AWQ and a LoRA adapter, each on a GPU: the
# quality stages' python actions run on CUDA when given a device.
calibrate "calib_gpu" {
  model   = ":gpu_a"
  dataset = "//data:tiny"
  samples = 32
  seq_len = 64
  resources {
    gpus = 1
  }
}

lora "lora_gpu" {
  base    = ":gpu_a"
  dataset = "//data:tiny"
  rank    = 16
  alpha   = 32
  params  = { steps = 200, seed = 1 }
  resources {
    gpus = 1
  }
}
