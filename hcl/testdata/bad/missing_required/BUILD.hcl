run "x" {
  command = "true"
}
