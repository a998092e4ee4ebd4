run "x" {
  outs    = ["o"]
  command = "true"
  srcz    = []
}
