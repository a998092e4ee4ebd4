run "q" {
  outs    = ["x"]
  command = "true"
}

run "data" {
  outs    = ["x.txt"]
  command = "true"
}

run "use" {
  srcs    = [":data", "data/x.txt"]
  outs    = ["o", "a\\b"]
  command = "true"
}
