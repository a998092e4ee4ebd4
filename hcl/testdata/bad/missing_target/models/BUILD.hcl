run "x" {
  srcs    = ["//data:rwa", "//nowhere:y", ":z"]
  outs    = ["o"]
  command = "true"
}
