run "x" {
  outs    = ["o"]
  command = ["echo", "hi"]
  resources {
    cpus   = "two"
    memory = "12XB"
    gpus   = 1.5
    time   = "soon"
  }
}
