files "raw" {
  srcs = ["a.txt"]
}
files "clean" {
  srcs = ["a.txt"]
}
