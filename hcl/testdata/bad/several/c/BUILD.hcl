run "z" {
  outs = ["../escape"]
  command = "true"
  bogus = 1
}
