files "x" {
  srcs = [
    "a.txt",
    "../cogumi.hcl",
    "dir",
    "/etc/passwd",
  ]
}
