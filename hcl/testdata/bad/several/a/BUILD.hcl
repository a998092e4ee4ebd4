run "x" {
  outs    = ["o"
}
