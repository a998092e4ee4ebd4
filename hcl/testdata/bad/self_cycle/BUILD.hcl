run "me" {
  srcs    = [":me"]
  outs    = ["o"]
  command = "true"
}
