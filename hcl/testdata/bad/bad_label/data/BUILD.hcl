files "raw" {
  srcs = [":bad name", "//da ta:x"]
}
run "x" {
  srcs    = ["//data:"]
  outs    = ["o"]
  command = "true"
}
