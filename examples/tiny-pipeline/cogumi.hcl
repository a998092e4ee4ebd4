# The whole pipeline of PIPELINE.md, scaled down so that it runs end to end on
# a laptop CPU in a few minutes: teacher-generated data (from the local
# teacher, cogumi-teacher), a tiny Llama trained from scratch, pruning, a
# recovery fine-tune, AWQ, GGUF, quality gates, LoRA modifiers trained on the
# base's failures, a router, and zstd last. See README.md.
workspace {
  name = "tiny-pipeline"
}

variable "python" {
  description = "an interpreter with torch (Debian's python3-torch is /usr/bin/python3)"
  default     = "/usr/bin/python3"
}

variable "node_llama_cpp" {
  description = "node-llama-cpp's command, installed by `npm ci` in tools/"
  default     = "tools/node_modules/.bin/node-llama-cpp"
}

variable "teacher" {
  description = "an OpenAI-compatible chat-completions API; scripts/quickstart.sh starts cogumi-teacher here"
  default     = "http://127.0.0.1:18181/v1"
}

# The plan routes at perplexity 12.4 per token of Llama's tokenizer. This
# model's tokens are bytes, whose perplexities are lower: its long
# chain-of-thought examples score about 2 to 3.3, the short easy answers
# 3.6 to 16, so 3.5 makes the short ones "failures" in every domain.
variable "failure_ppl" {
  description = "perplexity above which an example counts as a failure of the base"
  default     = 3.5
}

toolchain "python" {
  command = var.python
}

toolchain "llama" {
  command = var.node_llama_cpp
}
