run "x" {
  outs    = ["o"]
  command = "true"
}

run "x" {
  outs    = ["p"]
  command = "true"
}
