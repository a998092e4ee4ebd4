# A small JSONL dataset: one short text per line, in a "text" field.
files "tiny" {
  srcs = ["tiny.jsonl"]
}
