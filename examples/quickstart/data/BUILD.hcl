# A group of source files: hashed where they lie, never copied.
files "corpus" {
  srcs = glob("*.txt")
}
