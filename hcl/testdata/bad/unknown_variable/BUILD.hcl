run "x" {
  outs    = ["o"]
  command = "train --epochs ${var.epoch}"
}
