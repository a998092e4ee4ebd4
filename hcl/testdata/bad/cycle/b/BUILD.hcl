run "z" {
  srcs    = ["//a:x"]
  outs    = ["o"]
  command = "true"
}
