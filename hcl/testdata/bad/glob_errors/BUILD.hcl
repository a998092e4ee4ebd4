files "none" {
  srcs = glob("*.jsonl")
}

files "escape" {
  srcs = glob("../*")
}

run "text" {
  outs    = ["o"]
  command = file("nope.txt")
}
