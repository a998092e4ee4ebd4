run "y" {
  srcs    = ["//b:z"]
  outs    = ["o"]
  command = "true"
}

run "x" {
  srcs    = [":y"]
  outs    = ["o"]
  command = "true"
}
