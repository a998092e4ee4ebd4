# calibrate with an imatrix attribute on CUDA: one action writes the
# calibration and the importance matrix (rules/calibrate.go). Each file must
# equal, byte for byte, what a calibrate target without the attribute and an
# imatrix target with the same settings write on the same GPU.
# prove-calibrate-imatrix.sh writes the checkpoints (internal/tinyllama) and
# compares. "small" is the test suite's tiny shape; "tinyllama" is
# TinyLlama-1.1B's (the checkpoint prove-real-checkpoints.sh writes).

model "small" {
  path = "ckpt/small"
}

calibrate "small_both" {
  model    = ":small"
  dataset  = "//data:tiny"
  samples  = 16
  seq_len  = 64
  max_rows = 128
  imatrix  = { chunk_size = 64 }
  resources {
    gpus = 1
  }
}

calibrate "small_calib" {
  model    = ":small"
  dataset  = "//data:tiny"
  samples  = 16
  seq_len  = 64
  max_rows = 128
  resources {
    gpus = 1
  }
}

imatrix "small_im" {
  model      = ":small"
  dataset    = "//data:tiny"
  chunk_size = 64
  resources {
    gpus = 1
  }
}

calibrate "tinyllama_both" {
  model    = "//shapes:tinyllama"
  dataset  = "//data:tiny"
  samples  = 16
  seq_len  = 256
  max_rows = 512
  imatrix  = { chunk_size = 256 }
  resources {
    gpus = 1
  }
}

calibrate "tinyllama_calib" {
  model    = "//shapes:tinyllama"
  dataset  = "//data:tiny"
  samples  = 16
  seq_len  = 256
  max_rows = 512
  resources {
    gpus = 1
  }
}

imatrix "tinyllama_im" {
  model      = "//shapes:tinyllama"
  dataset    = "//data:tiny"
  chunk_size = 256
  resources {
    gpus = 1
  }
}
