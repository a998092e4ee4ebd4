# The GPU example: a tiny Llama-style model trained by train.py, on a CPU
# in tests, on one or two GPUs, or through Slurm (see README.md).
workspace {
  name = "gpu"
}

variable "python" {
  description = "the interpreter with torch (a venv's, or Debian's /usr/bin/python3)"
  default     = "python3"
}

variable "backend" {
  description = "the torch runtime of calibrate, eval and lora: auto (transformers where it is installed), transformers or builtin"
  default     = "auto"
}

toolchain "python" {
  command = var.python # its interpreter and torch versions join the action key
  backend = var.backend
}

executor "cluster" {
  slurm {
    partition = "gpu"
  }
}
