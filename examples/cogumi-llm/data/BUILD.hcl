# Stage 1: synthetic data from teacher APIs (PIPELINE.md 1a-1d).
#
# Every request is its own cache entry (endpoint, model, rendered prompt,
# params, row), stored the moment its answer arrives and shared through the
# team's bucket: an interrupted run keeps what it paid for, and editing one
# template (or one domain's section of it) re-sends only the requests whose
# rendered prompt changed. Prices are list prices per million tokens at the
# time of writing; max_cost stops a target before it can overspend.

locals {
  min_score = 7 # judge scores below this drop the question before it is answered
}

# 1a. Questions: 10K per domain for the four large domains...
generate "questions_core" {
  endpoint    = var.question_endpoint
  model       = "deepseek-chat"
  api_key_env = "DEEPSEEK_API_KEY"
  system      = file("prompts/teacher_system.tmpl")
  prompt      = file("prompts/question.tmpl")
  for_each = {
    domain     = ["coding", "math", "tool_use", "reasoning"]
    difficulty = ["easy", "hard"]
  }
  count       = { easy = 4000, hard = 6000 } # 40% easy, 60% hard: 10K per domain, 40K
  field       = "question"
  params      = { temperature = 0.9, max_tokens = 400 }
  price       = { input_per_mtok = 0.27, output_per_mtok = 1.10 }
  max_cost    = 25
  concurrency = 32
  rate_limit  = "1200/min"
}

# ... and 5K per domain for the four smaller ones (20K).
generate "questions_extra" {
  endpoint    = var.question_endpoint
  model       = "deepseek-chat"
  api_key_env = "DEEPSEEK_API_KEY"
  system      = file("prompts/teacher_system.tmpl")
  prompt      = file("prompts/question.tmpl")
  for_each = {
    domain     = ["reading_comprehension", "summarisation", "common_sense", "instruction_following"]
    difficulty = ["easy", "hard"]
  }
  count       = { easy = 2000, hard = 3000 }
  field       = "question"
  params      = { temperature = 0.9, max_tokens = 700 } # passages and texts to summarise are longer
  price       = { input_per_mtok = 0.27, output_per_mtok = 1.10 }
  max_cost    = 20
  concurrency = 32
  rate_limit  = "1200/min"
}

# The 60K questions as one JSONL file (judge reads one).
dataset "questions" {
  from = [":questions_core", ":questions_extra"]
}

# 1b. An LLM judge scores every question (~$3-9 for 60K); the number in its
# answer becomes the row's "score" (null when there is none).
judge "scored" {
  from        = ":questions"
  endpoint    = var.judge_endpoint
  model       = "gpt-4o-mini"
  api_key_env = "OPENAI_API_KEY"
  prompt      = file("prompts/judge.tmpl")
  field       = "score"
  params      = { temperature = 0, max_tokens = 64 } # a short reason, then "Score: N"
  price       = { input_per_mtok = 0.15, output_per_mtok = 0.60 }
  max_cost    = 12
  concurrency = 64
  rate_limit  = "3000/min"
}

# 1c. Answers. Difficulty was set in the question's prompt, so the split is
# by the row's field: easy ones (40%) to a cheap model...
generate "answers_easy" {
  from        = ":scored"
  where       = row.difficulty == "easy" && coalesce(row.score, 0) >= local.min_score
  endpoint    = var.question_endpoint
  model       = "deepseek-chat"
  api_key_env = "DEEPSEEK_API_KEY"
  system      = file("prompts/teacher_system.tmpl")
  prompt      = file("prompts/answer_easy.tmpl")
  field       = "answer"
  params      = { temperature = 0.3, max_tokens = 600 }
  price       = { input_per_mtok = 0.27, output_per_mtok = 1.10 }
  max_cost    = 25
  concurrency = 32
  rate_limit  = "1200/min"
}

# ... hard ones (60%) to a strong model, with chain of thought and a
# self-critique in the same answer (~$414 for 36K).
generate "answers_hard" {
  from        = ":scored"
  where       = row.difficulty == "hard" && coalesce(row.score, 0) >= local.min_score
  endpoint    = var.strong_endpoint
  model       = "claude-sonnet-4-20250514"
  api_key_env = "ANTHROPIC_API_KEY"
  system      = file("prompts/teacher_system.tmpl")
  prompt      = file("prompts/answer_hard.tmpl")
  field       = "answer"
  params      = { temperature = 0.2, max_tokens = 1500 }
  price       = { input_per_mtok = 3.00, output_per_mtok = 15.00 }
  max_cost    = 480
  concurrency = 16
  rate_limit  = "400/min"
}

# 1d. The training data: Q/A pairs, deduplicated, 40/60 easy/hard, split,
# and MAML episodes with the 8 domains as the meta-tasks.
dataset "splits" {
  from          = [":answers_easy", ":answers_hard"]
  text          = "${row.question}\n\n${row.answer}"
  dedupe        = "normalized_text"
  dedupe_fields = ["question"] # the same question twice is one question, whatever the answers
  where         = strlen(trimspace(coalesce(row.answer, ""))) >= 20
  sample        = { by = ["domain", "difficulty"], quota = { easy = 0.4, hard = 0.6 }, seed = 7 }
  split         = { train = 0.9, val = 0.05, test = 0.05 }
  episodes      = { by = "domain", support = 5, query = 15, seed = 7 }
}

# Calibration text for AWQ. train.jsonl is in generation order (domain by
# domain), and calibrate reads the first samples x seq_len tokens; episodes
# take the domains in turn, so rows drawn from them round-robin cover all 8.
run "calib" {
  srcs    = ["calib_rows.py", ":splits"]
  command = "python3 data/calib_rows.py 1200 < data/splits/episodes.jsonl > $OUT/calib.jsonl"
  outs    = ["calib.jsonl"]
}
