# cogumi-llm: the team's whole pipeline (../../../shared/PIPELINE.md in the
# cogumi repository) at real scale: Llama-3.1-8B-Instruct as the base,
# Llama-3.2-1B-Instruct as the speculative-decoding draft (the plan's
# TinyLlama-1.1B cannot draft for it in llama.cpp). See README.md.
workspace {
  name = "cogumi-llm"
}

# --- variables: set with --var NAME=VALUE or COGUMI_VAR_NAME ---------------

variable "python" {
  description = "the interpreter with torch 2.x and transformers, the same path on the GPU nodes (a venv on the shared file system)"
  default     = "/shared/venvs/cogumi-llm/bin/python"
}

variable "python_version" {
  description = "the venv's versions, written down: they join the action keys instead of probing an interpreter this machine may not have; change it when the venv changes"
  default     = "python 3.11.10, torch 2.5.1+cu124, transformers 4.46.3"
}

variable "question_endpoint" {
  description = "OpenAI-compatible API of the teacher that writes questions and easy answers"
  default     = "https://api.deepseek.com/v1"
}

variable "strong_endpoint" {
  description = "OpenAI-compatible API of the strong teacher (hard answers: chain of thought + self-critique)"
  default     = "https://api.anthropic.com/v1"
}

variable "judge_endpoint" {
  description = "OpenAI-compatible API of the LLM judge that scores questions"
  default     = "https://api.openai.com/v1"
}

# --- toolchains: their versions join the action keys of the rules using them

toolchain "python" {
  command = var.python # train, calibrate, lora, eval of safetensors checkpoints
  version = var.python_version
}

toolchain "llama" {
  # llama.cpp through node-llama-cpp scores GGUF files (eval): npm ci in tools/
  command = "tools/node_modules/.bin/node-llama-cpp"
  version = "node-llama-cpp 3.21.1" # as pinned in tools/package.json
}

# --- where GPU work runs ---------------------------------------------------

executor "cluster" {
  slurm {
    partition = "gpu"
    account   = "cogumi-llm"
    # gpu_memory = "80GB" asks for an 80 GB card; "40GB" for any card with
    # at least 40 GB (Slurm's | means "either feature").
    constraints = {
      "80GB" = "gpu80g"
      "40GB" = "gpu40g|gpu80g"
    }
    extra_args = ["--qos=normal"]
    # Scratch directories the nodes can see; without it inputs and outputs
    # travel through the remote cache below.
    shared_dir = "/shared/cogumi/scratch"
  }
}

# --- the team's shared cache: multi-GB checkpoints move through it once ----
# Credentials never go here: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
# ~/.aws/credentials with AWS_PROFILE, or the nodes' instance role.
remote_cache {
  url    = "s3://cogumi-llm-artifacts/cache"
  region = "eu-west-1"
  upload = true
}
