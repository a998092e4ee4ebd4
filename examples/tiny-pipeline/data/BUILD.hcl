# Stage 1 of PIPELINE.md: synthetic data from teacher models, scaled down.
# Every request is cached on its own: a second build sends nothing, and
# editing one template re-sends only the requests that template renders.

generate "questions" {
  endpoint    = var.teacher
  model       = "teacher-large"
  api_key_env = "TEACHER_API_KEY"
  prompt      = file("prompts/question.tmpl")
  for_each    = { domain = ["coding", "math", "tool_use"], difficulty = ["easy", "hard"] }
  count       = { easy = 24, hard = 36 } # the plan's 40/60 split
  params      = { temperature = 0.9, max_tokens = 96 }
  price       = { input_per_mtok = 0.27, output_per_mtok = 1.10 }
  max_cost    = 0.50
  concurrency = 8
  rate_limit  = "6000/min"
  field       = "question"
}

# An LLM judge scores every question; a threshold filters below.
judge "scored" {
  endpoint    = var.teacher
  model       = "teacher-small"
  api_key_env = "TEACHER_API_KEY"
  from        = ":questions/questions.jsonl"
  prompt      = file("prompts/judge.tmpl")
  params      = { temperature = 0, max_tokens = 48 }
  price       = { input_per_mtok = 0.14, output_per_mtok = 0.28 }
  max_cost    = 0.10
  concurrency = 8
  field       = "score"
}

# Easy questions: a cheap model's short answer.
generate "answers_easy" {
  endpoint    = var.teacher
  model       = "teacher-small"
  api_key_env = "TEACHER_API_KEY"
  from        = ":scored/scored.jsonl"
  where       = row.difficulty == "easy"
  prompt      = file("prompts/answer.tmpl")
  params      = { temperature = 0.3, max_tokens = 128 }
  price       = { input_per_mtok = 0.14, output_per_mtok = 0.28 }
  max_cost    = 0.10
  concurrency = 8
  field       = "answer"
}

# Hard questions: a strong model's chain of thought and self-critique.
generate "answers_hard" {
  endpoint    = var.teacher
  model       = "teacher-large"
  api_key_env = "TEACHER_API_KEY"
  from        = ":scored/scored.jsonl"
  where       = row.difficulty == "hard"
  prompt      = file("prompts/cot.tmpl")
  params      = { temperature = 0.7, max_tokens = 320 }
  price       = { input_per_mtok = 3.00, output_per_mtok = 15.00 }
  max_cost    = 0.50
  concurrency = 8
  field       = "answer"
}

# Train/val/test splits, 40/60 easy/hard, deduplicated, judged >= 4, and
# MAML episodes (the domains are the tasks).
dataset "splits" {
  from     = [":answers_easy/answers_easy.jsonl", ":answers_hard/answers_hard.jsonl"]
  text     = "Question: ${row.question}\nAnswer: ${row.answer}"
  dedupe   = "normalized_text"
  where    = row.score >= 4
  sample   = { by = ["domain", "difficulty"], quota = { easy = 0.4, hard = 0.6 }, seed = 7 }
  split    = { train = 0.8, val = 0.1, test = 0.1 }
  episodes = { by = "domain", support = 2, query = 4, seed = 7 }
}
