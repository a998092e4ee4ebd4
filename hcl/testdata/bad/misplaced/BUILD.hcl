name = "x"

variable "v" {
  default = 1
}

files "f" "g" {
  srcs = []
}

run "bad/name" {
  outs    = ["o"]
  command = "true"
}

files "fine" {
  srcs = []
  resources {
    cpus = 1
  }
}
