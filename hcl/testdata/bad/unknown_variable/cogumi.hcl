workspace {
  name = "bad"
}
variable "epochs" {
  default = 3
}
