run "x" {
  outs    = ["y"]
  command = "true"
}
