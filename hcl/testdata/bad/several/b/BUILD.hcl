run "y" {
  srcs    = ["//a:x", "//c:nope", "missing.txt"]
  outs    = ["o", "o"]
  command = 42
}

quantize "p" {
  model = ":y"
}

run "y" {
  outs    = ["o"]
  command = "true"
}
