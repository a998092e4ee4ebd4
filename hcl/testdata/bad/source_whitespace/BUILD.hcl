files "x" {
  srcs = ["a b.txt"]
}
