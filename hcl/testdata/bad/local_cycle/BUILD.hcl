locals {
  a = "${local.b}-x"
  b = local.c
  c = upper(local.a)
  d = local.a
}

run "x" {
  outs    = ["o"]
  command = local.d
}
