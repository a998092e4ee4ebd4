file "x" {
  srcs = []
}
